package sdn

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"

	"github.com/clocker/clocker/internal/labels"
)

// AgentState is everything one host's agent must make true: the host's
// part of each fleet network it is a member of, and the fleet names of
// every network's members on all hosts. The manager computes it and hands
// it to the agent whole; the agent keeps nothing else, so a restarted
// agent (or manager) converges again from one copy of it.
type AgentState struct {
	// Host is the host the state is for (for logs).
	Host string `json:"host"`
	// Networks are the fleet networks this host is a member of.
	Networks []HostNetwork `json:"networks"`
	// Records are the fleet names of each network's members, by network
	// ID: container names, --network-alias aliases and compose service
	// names, each to the members' addresses in that network.
	Records map[string]map[string][]netip.Addr `json:"records,omitempty"`
	// DNS is the host's DNS address (its engine's default bridge gateway):
	// every container of the host reaches it whatever its networks, and
	// the manager makes it their DNS server. The agent answers there as
	// on each network's gateway. Zero: the gateways only.
	DNS netip.Addr `json:"dns,omitzero"`
	// Clients are the addresses (on any network) of this host's
	// containers that are on fleet networks, each with the IDs of those
	// networks (sorted): a query from there is answered the names of
	// those networks. A querier not listed gets the names of the network
	// whose subnet holds its address (a container that just started), or
	// none.
	Clients map[netip.Addr][]string `json:"clients,omitempty"`
	// Links are the link aliases of this host's containers (any of their
	// addresses), each to the linked container's addresses: `--link X:Y`
	// on a fleet network, whose target Docker's embedded resolver cannot
	// find when it runs on another host. A client's links win over the
	// names of its networks, as an engine's do.
	Links map[netip.Addr]map[string][]netip.Addr `json:"links,omitempty"`
}

// Agent container facts shared by the manager and the agent.
const (
	// LabelAgent marks the agent container on each host.
	LabelAgent = labels.Agent
	// AgentStateDir is the directory of the agent's image the manager
	// writes the state into (through the engine's archive API).
	AgentStateDir = "/state"
	// AgentStateFile is the state's file name in AgentStateDir.
	AgentStateFile = "desired.json"
	// AgentStatsFile is where the agent keeps its DNS counts in
	// AgentStateDir (for the manager's metrics).
	AgentStatsFile = "stats.json"
	// AgentAppliedFile is where the agent tells which state it applied
	// last, in AgentStateDir: AppliedSum of the state file's bytes. The
	// manager reads it to answer a start only once the names it brings
	// resolve.
	AgentAppliedFile = "applied"
	// AgentAckPrefix starts each line the agent writes on its stdout for
	// a state pushed on its stdin and applied; AppliedSum of the state's
	// line follows.
	AgentAckPrefix = "applied "
)

// AppliedSum is what the agent writes in AgentAppliedFile after it applied
// the state file data: its SHA-256, in hex.
func AppliedSum(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
