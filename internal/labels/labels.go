// Package labels names every label Clocker reads or writes: its own
// (io.clocker.*), Docker Compose's and classic Swarm's, on containers,
// networks and engines. A leaf: it imports nothing of ours, so every package of
// Clocker (the scheduler too) may use it.
package labels

import "strings"

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
	// Owner is the tenant (its identity) a container, network or volume
	// belongs to, with --tenants.
	Owner = "io.clocker.owner"
)

// IsBookkeeping tells whether key is a label Clocker keeps for itself on
// what it creates: the host, the DNS servers it gave, a host's copy of a
// fleet network. Answers to users leave these out (the host is shown as
// Node), unless a list is filtered on one of them.
func IsBookkeeping(key string) bool {
	switch key {
	case Host, DNS, NetworkID, Owner:
		return true
	}
	return false
}

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
	// Replicas says how the replicas of one compose service spread over
	// hosts: "spread" (the default, a soft anti-affinity), "hard" (never
	// two on one host) or "off".
	Replicas = "io.clocker.replicas"
)

// Docker Compose's labels.
const (
	// ComposeProject is the compose project of a container, network or
	// volume.
	ComposeProject = "com.docker.compose.project"
	// ComposeService is the compose service of a container.
	ComposeService = "com.docker.compose.service"
	// ComposeOneoff is "True" on `compose run` containers: not replicas.
	ComposeOneoff = "com.docker.compose.oneoff"
	// ComposeContainerNumber is a replica's number within its service
	// (the N of project-service-N).
	ComposeContainerNumber = "com.docker.compose.container-number"
)

// ComposeReplica is the compose project and service of a container with
// these labels when it is one of the service's replicas (`compose run`
// containers are not); ok is false otherwise.
func ComposeReplica(l map[string]string) (project, service string, ok bool) {
	project, service = l[ComposeProject], l[ComposeService]
	if project == "" || service == "" || strings.EqualFold(l[ComposeOneoff], "true") {
		return "", "", false
	}
	return project, service, true
}

// ComposeReplicaOf names the compose service ("PROJECT/SERVICE") a
// container with these labels is a replica of; "" for none.
func ComposeReplicaOf(l map[string]string) string {
	if project, service, ok := ComposeReplica(l); ok {
		return project + "/" + service
	}
	return ""
}

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

// Labels of the containers, networks and volumes blueprints make.
const (
	// BlueprintApplication is the blueprint application's id.
	BlueprintApplication = "io.clocker.blueprint.application"
	// BlueprintEntity is the id of the entity a container runs.
	BlueprintEntity = "io.clocker.blueprint.entity"
)

// Labels users put on compose services to manage a project as an
// application.
const (
	// ReplicasWanted is how many replicas a service should have (default:
	// as many as it has when Clocker first finds it).
	ReplicasWanted = "io.clocker.replicas.wanted"
	// PolicyPrefix starts the policy labels: io.clocker.policy.KIND=true
	// attaches one (KIND restarter, replacer, autoscaler) and
	// io.clocker.policy.KIND.KEY=VALUE configures it.
	PolicyPrefix = "io.clocker.policy."
)
