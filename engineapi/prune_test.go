package engineapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/clocker/clocker/internal/errdefs"
)

func TestSumPrunes(t *testing.T) {
	hosts := []string{"h1", "h2"}
	tests := []struct {
		name    string
		bodies  []string
		volumes string // SumVolumePrunes, JSON
		nets    string // SumNetworkPrunes, JSON
	}{
		{name: "nothing pruned", bodies: []string{`{"VolumesDeleted":null,"SpaceReclaimed":0}`, `{}`},
			volumes: `{"VolumesDeleted":[],"SpaceReclaimed":0}`, nets: `{"NetworksDeleted":null}`},
		{name: "joined in host order, space summed",
			bodies:  []string{`{"VolumesDeleted":["a"],"NetworksDeleted":["n1"],"SpaceReclaimed":10}`, `{"VolumesDeleted":["b","a"],"NetworksDeleted":["n2"],"SpaceReclaimed":5}`},
			volumes: `{"VolumesDeleted":["a","b","a"],"SpaceReclaimed":15}`, nets: `{"NetworksDeleted":["n1","n2"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bodies := make([][]byte, len(tt.bodies))
			for i, b := range tt.bodies {
				bodies[i] = []byte(b)
			}
			v, err := SumVolumePrunes(hosts, bodies)
			if got, _ := json.Marshal(v); err != nil || string(got) != tt.volumes {
				t.Errorf("volumes: %s, %v; want %s", got, err, tt.volumes)
			}
			n, err := SumNetworkPrunes(hosts, bodies)
			if got, _ := json.Marshal(n); err != nil || string(got) != tt.nets {
				t.Errorf("networks: %s, %v; want %s", got, err, tt.nets)
			}
		})
	}
	_, err := SumVolumePrunes(hosts, [][]byte{[]byte(`{}`), []byte(`{"VolumesDeleted":3}`)})
	if errdefs.Status(err) != http.StatusServiceUnavailable || !strings.HasPrefix(err.Error(), "host h2: bad prune report: ") {
		t.Errorf("a bad report: %v, want the host's 503", err)
	}
}
