package hosts

import (
	"encoding/json"
	"time"

	"github.com/moby/moby/api/types/container"
)

// Container is one cached container of a host, as its engine lists it.
type Container struct {
	// Host is the name of the fleet host that runs the container.
	Host string
	// Raw is the engine's own JSON for the container in GET /containers/json,
	// replayed to clients as it is so that no field is lost or reshaped.
	Raw json.RawMessage
	// Summary is Raw decoded, for filtering and routing.
	Summary container.Summary
	// Created is the precise creation time (from inspect): the list's
	// seconds are too coarse to order containers for before/since.
	Created time.Time
	// NanoCPUs and Memory are what the container reserves (0: unlimited);
	// NanoCPUs as ReservedNanoCPUs counts it.
	NanoCPUs, Memory int64
	// Inspect is the engine's GET /containers/{id}/json answer at its
	// newest API version, re-read on every event of the container, so that
	// inspect is served without a round trip to the engine.
	Inspect json.RawMessage
}

// ReservedNanoCPUs is the CPU a container's limits take from its host, in
// nano-CPUs: --cpus (NanoCpus), else --cpu-quota over --cpu-period (the
// kernel's default period of 100ms when none is given). CPU shares (-c)
// are a relative weight between busy containers, not a number of CPUs:
// they reserve nothing (Swarm classic counted -c 512 as 512 CPUs).
func ReservedNanoCPUs(nanoCPUs, cpuQuota, cpuPeriod int64) int64 {
	if nanoCPUs > 0 {
		return nanoCPUs
	}
	if cpuQuota <= 0 {
		return 0 // -1 and 0: no quota
	}
	if cpuPeriod <= 0 {
		cpuPeriod = 100000
	}
	return cpuQuota * 1000 / cpuPeriod * 1e6
}

// ID returns the container's full ID.
func (c *Container) ID() string { return c.Summary.ID }
