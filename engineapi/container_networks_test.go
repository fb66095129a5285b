package engineapi

import (
	"encoding/json"
	"testing"
)

func TestShowNetworkIDs(t *testing.T) {
	fleet := map[string]string{"shop_front": "f00d", "shop_back": "beef"}
	idOf := func(name string) (string, bool) { id, ok := fleet[name]; return id, ok }
	in := `{"Id":"c1","NetworkSettings":{"Networks":{"bridge":{"NetworkID":"b1"},"shop_back":{"Aliases":["db"],"NetworkID":"copy1","IPAddress":"10.0.0.2"},"shop_front":{"NetworkID":"copy2"}}},"Name":"/db"}`
	out := ShowNetworkIDs([]byte(in), idOf)
	var got struct {
		ID              string `json:"Id"`
		Name            string
		NetworkSettings struct {
			Networks map[string]struct {
				NetworkID, IPAddress string
				Aliases              []string
			}
		}
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	nets := got.NetworkSettings.Networks
	if nets["bridge"].NetworkID != "b1" || nets["shop_back"].NetworkID != "beef" || nets["shop_front"].NetworkID != "f00d" {
		t.Errorf("network IDs: %+v", nets)
	}
	if got.ID != "c1" || got.Name != "/db" || nets["shop_back"].IPAddress != "10.0.0.2" || len(nets["shop_back"].Aliases) != 1 {
		t.Errorf("other fields changed: %s", out)
	}
	// Nothing to change: the same bytes.
	for _, same := range []string{
		`{"Id":"c2","NetworkSettings":{"Networks":{"bridge":{"NetworkID":"b1"}}}}`,
		`{"Id":"c3","NetworkSettings":{"Networks":{"shop_back":{"NetworkID":"beef"}}}}`,
		`{"Id":"c4","NetworkSettings":{"Networks":null}}`,
		`{"Id":"c5"}`,
	} {
		if out := ShowNetworkIDs([]byte(same), idOf); string(out) != same {
			t.Errorf("%s became %s", same, out)
		}
	}
}
