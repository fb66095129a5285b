package engineapi

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/docker/go-units"

	"github.com/clocker/clocker/hosts"
)

// InfoHost is one host of the fleet as GET /info sums it.
type InfoHost struct {
	Name, Addr string
	Healthy    bool
	// Err is the host's last error, shown while it is unhealthy.
	Err   string
	Facts hosts.Facts
	// Containers are the user's (agents left out, as `docker ps`).
	Containers []hosts.Container
}

// InfoHostOf is h as GET /info sums it.
func InfoHostOf(h *hosts.Host) InfoHost {
	ih := InfoHost{Name: h.Name, Addr: h.Endpoint.Addr(), Healthy: h.Healthy(), Facts: h.Facts(),
		Containers: hosts.UserContainers(h.Containers())}
	if err := h.LastError(); err != nil && !ih.Healthy {
		ih.Err = err.Error()
	}
	return ih
}

// InfoFleet is what GET /info says of the fleet itself.
type InfoFleet struct {
	// Name is the manager's (its hostname); OperatingSystem names
	// Clocker and its version.
	Name, OperatingSystem string
	// Strategy and Filters name the placement chain.
	Strategy, Filters string
	// Images is the number of distinct images of the fleet (the rows of
	// GET /images/json?all=1, an image on three hosts once), as an
	// engine's Images counts what its list shows; nil when unknown: the
	// hosts' counts are summed then.
	Images *int
	// Role is the manager's, primary (default) or replica; Primary is
	// the leading manager's address when there are several.
	Role, Primary string
}

// MergeInfo is the fleet's GET /info: base (a healthy engine's answer)
// with the healthy hosts' containers, images, CPUs and memory summed, and
// every host listed in SystemStatus, as classic swarm did; the CLI prints
// those lines under "System Status" style headings.
func MergeInfo(base []byte, fleet InfoFleet, all []InfoHost) (map[string]any, error) {
	var v map[string]any
	if err := json.Unmarshal(base, &v); err != nil {
		return nil, err
	}
	var (
		running, paused, stopped, images, ncpu int
		mem                                    int64
	)
	role := fleet.Role
	if role == "" {
		role = "primary"
	}
	status := [][2]string{{"Role", role}}
	if fleet.Primary != "" {
		status = append(status, [2]string{"Primary", fleet.Primary})
	}
	status = append(status, [][2]string{
		{"Strategy", fleet.Strategy},
		{"Filters", fleet.Filters},
		{"Nodes", fmt.Sprint(len(all))},
	}...)
	for _, h := range all {
		f := h.Facts
		var hr, hp, hs int
		reservedCPU, reservedMem := hosts.Reservations(h.Containers)
		for _, c := range h.Containers {
			switch c.Summary.State {
			case "running", "restarting":
				hr++
			case "paused":
				hp++
			default:
				hs++
			}
		}
		state := "Healthy"
		if !h.Healthy {
			state = "Unhealthy"
		} else {
			running, paused, stopped = running+hr, paused+hp, stopped+hs
			ncpu += f.NCPU
			mem += f.MemTotal
			var in struct{ Images int }
			_ = json.Unmarshal(f.Info, &in)
			images += in.Images
		}
		status = append(status,
			[2]string{" " + h.Name, h.Addr},
			[2]string{"  └ Status", state},
			[2]string{"  └ Containers", fmt.Sprintf("%d (%d Running, %d Paused, %d Stopped)", len(h.Containers), hr, hp, hs)},
			[2]string{"  └ Reserved CPUs", fmt.Sprintf("%g / %d", float64(reservedCPU)/1e9, f.NCPU)},
			[2]string{"  └ Reserved Memory", fmt.Sprintf("%s / %s", units.BytesSize(float64(reservedMem)), units.BytesSize(float64(f.MemTotal)))},
			[2]string{"  └ Labels", strings.Join(f.Labels, ", ")},
			[2]string{"  └ Error", h.Err},
			[2]string{"  └ ServerVersion", f.Version},
		)
	}
	v["Containers"] = running + paused + stopped
	v["ContainersRunning"] = running
	v["ContainersPaused"] = paused
	v["ContainersStopped"] = stopped
	v["Images"] = images
	if fleet.Images != nil {
		v["Images"] = *fleet.Images
	}
	v["NCPU"] = ncpu
	v["MemTotal"] = mem
	v["SystemStatus"] = status
	v["Name"] = fleet.Name
	v["Labels"] = []string{}
	v["OperatingSystem"] = fleet.OperatingSystem
	return v, nil
}

// FleetVersion is the fleet's GET /version: a healthy engine's answer
// (base) with the oldest engine version of the fleet (others: the other
// healthy engines' versions; clients gate features on it), the fleet's
// API version (docker-py reads ApiVersion here, so it must agree with
// /_ping) in it and in the Engine component's details (the CLI prints
// those), and platform as the platform's name.
func FleetVersion(base []byte, others []string, apiVersion, minAPIVersion, platform string) (map[string]any, error) {
	var v map[string]any
	if err := json.Unmarshal(base, &v); err != nil {
		return nil, err
	}
	for _, ev := range others {
		if ev != "" && compareEngineVersions(ev, fmt.Sprint(v["Version"])) < 0 {
			v["Version"] = ev
		}
	}
	v["ApiVersion"] = apiVersion
	v["MinAPIVersion"] = minAPIVersion
	if comps, ok := v["Components"].([]any); ok {
		for _, c := range comps {
			comp, _ := c.(map[string]any)
			if details, ok := comp["Details"].(map[string]any); ok && comp["Name"] == "Engine" {
				details["ApiVersion"] = apiVersion
				details["MinAPIVersion"] = minAPIVersion
			}
		}
	}
	v["Platform"] = map[string]string{"Name": platform}
	return v, nil
}

// compareEngineVersions compares engine versions such as 20.10.24 and
// 24.0.7+dfsg1, by their release numbers.
func compareEngineVersions(a, b string) int {
	clean := func(s string) string {
		if i := strings.IndexAny(s, "+-~"); i >= 0 {
			return s[:i]
		}
		return s
	}
	return hosts.CompareVersions(clean(a), clean(b))
}
