package proxy

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/docker/go-units"
	"github.com/gorilla/mux"

	"github.com/clocker/clocker/hosts"
	"github.com/clocker/clocker/internal/errdefs"
)

func (s *Server) registerSystem(r *mux.Router) {
	s.register(r,
		route{http.MethodGet, "/_ping", s.ping},
		route{http.MethodHead, "/_ping", s.ping},
		route{http.MethodGet, "/version", s.version},
		route{http.MethodGet, "/info", s.info},
	)
}

// ping answers as an engine does; the CLI and the Go client negotiate
// their version from its Api-Version header.
func (s *Server) ping(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Builder-Version", "1")
	h.Set("Swarm", "inactive")
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	_, err := w.Write([]byte("OK"))
	return err
}

// healthyHosts returns the hosts that answer, or the unavailable error when
// none does.
func (s *Server) healthyHosts() ([]*hosts.Host, error) {
	var out []*hosts.Host
	for _, h := range s.Fleet.Hosts() {
		if h.Healthy() {
			out = append(out, h)
		}
	}
	if len(out) == 0 {
		return nil, errdefs.New(errdefs.ErrUnavailable, "no host of the fleet is available")
	}
	return out, nil
}

// version takes a healthy engine's answer and makes it the fleet's: the
// fleet's API version and Clocker as the platform. Docker-py reads
// ApiVersion here, so it must agree with /_ping.
func (s *Server) version(w http.ResponseWriter, r *http.Request) error {
	hs, err := s.healthyHosts()
	if err != nil {
		return err
	}
	raw, status, err := hs[0].GetJSON(r.Context(), "/version", nil)
	if err != nil || status != http.StatusOK {
		return hs[0].Unavailable()
	}
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	// The oldest engine's version is the fleet's: clients gate features on it.
	for _, h := range hs[1:] {
		if ev := h.Facts().Version; ev != "" && compareEngineVersions(ev, fmt.Sprint(v["Version"])) < 0 {
			v["Version"] = ev
		}
	}
	fleetV := s.Fleet.APIVersion(fallbackAPIVersion)
	v["ApiVersion"] = fleetV
	v["MinAPIVersion"] = MinAPIVersion
	// The CLI prints the Engine component's details: make them the fleet's.
	if comps, ok := v["Components"].([]any); ok {
		for _, c := range comps {
			comp, _ := c.(map[string]any)
			if details, ok := comp["Details"].(map[string]any); ok && comp["Name"] == "Engine" {
				details["ApiVersion"] = fleetV
				details["MinAPIVersion"] = MinAPIVersion
			}
		}
	}
	v["Platform"] = map[string]string{"Name": fmt.Sprintf("Clocker %s (a fleet of %d engines)", Version, len(s.Fleet.Hosts()))}
	return writeJSON(w, http.StatusOK, v)
}

func compareEngineVersions(a, b string) int {
	clean := func(s string) string {
		if i := strings.IndexAny(s, "+-~"); i >= 0 {
			return s[:i]
		}
		return s
	}
	return hosts.CompareVersions(clean(a), clean(b))
}

// info sums the fleet and lists each host in SystemStatus, as classic swarm
// did; the CLI prints those lines under "System Status" style headings.
func (s *Server) info(w http.ResponseWriter, r *http.Request) error {
	hs, err := s.healthyHosts()
	if err != nil {
		return err
	}
	base := hs[0].Facts().Info
	var v map[string]any
	if err := json.Unmarshal(base, &v); err != nil {
		return err
	}
	all := s.Fleet.Hosts()
	var (
		running, paused, stopped, images, ncpu int
		mem                                    int64
		status                                 [][2]string
	)
	status = append(status,
		[2]string{"Role", "primary"},
		[2]string{"Strategy", s.Strategy.Name},
		[2]string{"Filters", filterNames(s)},
		[2]string{"Nodes", fmt.Sprint(len(all))},
	)
	for _, h := range all {
		f := h.Facts()
		cs := withoutAgents(h.Containers(), nil) // as `docker ps` counts them
		var hr, hp, hs int
		reservedCPU, reservedMem := reservations(cs)
		for _, c := range cs {
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
		if !h.Healthy() {
			state = "Unhealthy"
		} else {
			running, paused, stopped = running+hr, paused+hp, stopped+hs
			ncpu += f.NCPU
			mem += f.MemTotal
			var in struct{ Images int }
			_ = json.Unmarshal(f.Info, &in)
			images += in.Images
		}
		errText := ""
		if err := h.LastError(); err != nil && !h.Healthy() {
			errText = err.Error()
		}
		status = append(status,
			[2]string{" " + h.Name, hostAddr(h)},
			[2]string{"  └ Status", state},
			[2]string{"  └ Containers", fmt.Sprintf("%d (%d Running, %d Paused, %d Stopped)", len(cs), hr, hp, hs)},
			[2]string{"  └ Reserved CPUs", fmt.Sprintf("%g / %d", float64(reservedCPU)/1e9, f.NCPU)},
			[2]string{"  └ Reserved Memory", fmt.Sprintf("%s / %s", units.BytesSize(float64(reservedMem)), units.BytesSize(float64(f.MemTotal)))},
			[2]string{"  └ Labels", strings.Join(f.Labels, ", ")},
			[2]string{"  └ Error", errText},
			[2]string{"  └ ServerVersion", f.Version},
		)
	}
	v["Containers"] = running + paused + stopped
	v["ContainersRunning"] = running
	v["ContainersPaused"] = paused
	v["ContainersStopped"] = stopped
	v["Images"] = images
	v["NCPU"] = ncpu
	v["MemTotal"] = mem
	v["SystemStatus"] = status
	v["Name"] = clockerName()
	v["Labels"] = []string{}
	v["OperatingSystem"] = fmt.Sprintf("Clocker %s (%d hosts)", Version, len(all))
	return writeJSON(w, http.StatusOK, v)
}

func filterNames(s *Server) string {
	names := make([]string, len(s.Strategy.Filters))
	for i, f := range s.Strategy.Filters {
		names[i] = f.Name()
	}
	return strings.Join(names, ", ")
}

// hostAddr is the host's address as users know it.
func hostAddr(h *hosts.Host) string { return endpointAddr(h.Endpoint) }

func endpointAddr(ep hosts.Endpoint) string {
	if ep.Network == "tcp" {
		return ep.Address
	}
	return ep.URL
}

// hostIP is the host's IP address (loopback for a local socket).
func hostIP(h *hosts.Host) string { return endpointIP(h.Endpoint) }

func endpointIP(ep hosts.Endpoint) string {
	if ep.Network == "tcp" {
		if ip, _, err := net.SplitHostPort(ep.Address); err == nil {
			return ip
		}
	}
	return "127.0.0.1"
}

func clockerName() string {
	name, err := os.Hostname()
	if err != nil {
		return "clocker"
	}
	return name
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}
