package reschedule

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/labels"
	"github.com/clocker/clocker/sdn"
)

// stoppedByFailure is how long before its host was seen down a container
// may have stopped and still count as stopped by the failure: an engine
// that shuts down stops its containers first (a crash leaves them running
// in the cache).
const stoppedByFailure = 30 * time.Second

// recreate turns a container's inspect into the create that makes it
// again: its name, config, host config and the networks it joined (with
// its aliases and links); and whether it ran when its host failed.
func recreate(c hosts.Container, downSince time.Time) (opts client.ContainerCreateOptions, running bool, err error) {
	var in container.InspectResponse
	if err := json.Unmarshal(c.Inspect, &in); err != nil {
		return opts, false, fmt.Errorf("inspect: %w", err)
	}
	if in.Config == nil {
		return opts, false, fmt.Errorf("inspect has no Config")
	}
	cfg := in.Config
	// The engine gives a container without one its short ID as hostname.
	if cfg.Hostname != "" && strings.HasPrefix(in.ID, cfg.Hostname) {
		cfg.Hostname = ""
	}
	delete(cfg.Labels, labels.Host) // set again for the new host
	endpoints := map[string]*network.EndpointSettings{}
	if in.NetworkSettings != nil {
		for name, ep := range in.NetworkSettings.Networks {
			if sdn.PerHostNetwork(name) || ep == nil { // it joins its new host's own
				continue
			}
			var aliases []string
			for _, a := range ep.Aliases {
				if !strings.HasPrefix(in.ID, a) { // the engine's own short-ID alias
					aliases = append(aliases, a)
				}
			}
			endpoints[name] = &network.EndpointSettings{Aliases: aliases, Links: ep.Links}
		}
	}
	opts = client.ContainerCreateOptions{Name: strings.TrimPrefix(in.Name, "/"), Config: cfg, HostConfig: in.HostConfig}
	if len(endpoints) > 0 {
		opts.NetworkingConfig = &network.NetworkingConfig{EndpointsConfig: endpoints}
	}
	if in.State != nil {
		started, _ := time.Parse(time.RFC3339Nano, in.State.StartedAt)
		finished, _ := time.Parse(time.RFC3339Nano, in.State.FinishedAt)
		running = in.State.Running || (finished.After(started) && finished.After(downSince.Add(-stoppedByFailure)))
	}
	return opts, running, nil
}
