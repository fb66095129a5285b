// Package labels names every label Clocker reads or writes: its own
// (io.clocker.*), Docker Compose's and classic Swarm's, on containers,
// networks and engines. A leaf: it imports nothing, so every package of
// Clocker (the scheduler too) may use it.
package labels

// Labels Clocker puts on what it creates.
const (
	// Host is put on every container Clocker creates: the host it runs on.
	Host = "io.clocker.host"
	// Reschedule records a container's reschedule policy
	// ("on-node-failure"); Clocker sets it from the env entry
	// reschedule:POLICY and Swarm's label, and reads it after restarts.
	Reschedule = "io.clocker.reschedule"
	// DNS records the DNS servers Clocker gave a container, so that a
	// recreate of it gets those of its new host, not the old host's.
	DNS = "io.clocker.dns"
	// NetworkID marks an engine network as a host's part of the fleet
	// network with this ID.
	NetworkID = "io.clocker.network.id"
	// Agent marks the agent container on each host.
	Agent = "io.clocker.agent"
	// Provisioner is the engine label naming the provisioner that made a
	// host (local, ssh).
	Provisioner = "io.clocker.provisioner"
)

// Labels users set to steer placement.
const (
	// Strategy chooses a strategy chain for one container.
	Strategy = "io.clocker.strategy"
	// Affinity holds Clocker affinity rules, one per line or ";".
	Affinity = "io.clocker.affinity"
	// Group and Application name a container's group (with the compose
	// project after them, in that order of precedence).
	Group       = "io.clocker.group"
	Application = "io.clocker.application"
)

// Docker Compose's labels.
const (
	// ComposeProject is the compose project of a container, network or
	// volume.
	ComposeProject = "com.docker.compose.project"
	// ComposeService is the compose service of a container.
	ComposeService = "com.docker.compose.service"
)

// Classic Swarm's labels.
const (
	// SwarmConstraints and SwarmAffinities hold JSON arrays of Swarm
	// expressions ("node==h1"), as Swarm wrote them.
	SwarmConstraints = "com.docker.swarm.constraints"
	SwarmAffinities  = "com.docker.swarm.affinities"
	// SwarmReschedulePolicies holds a JSON array of reschedule policies
	// (["on-node-failure"]).
	SwarmReschedulePolicies = "com.docker.swarm.reschedule-policies"
)

// Docker's network driver options Clocker sets on the engines' bridge
// networks.
const (
	// OptionBridgeName names the Linux bridge of a bridge network.
	OptionBridgeName = "com.docker.network.bridge.name"
	// OptionMTU is the network's MTU.
	OptionMTU = "com.docker.network.driver.mtu"
)
