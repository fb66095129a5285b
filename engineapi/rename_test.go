package engineapi

import "testing"

func TestMapStrings(t *testing.T) {
	strip := func(s string) string {
		if len(s) > 7 && s[:7] == "/alice_" {
			return "/" + s[7:]
		}
		return s
	}
	obj := []byte(`{"Id":"1","Names":["/alice_web","/x"],"Name":"/alice_web","Config":{"Cmd":["/alice_web"]}}`)
	if got := string(MapStrings(obj, strip, "Names")); got != `{"Id":"1","Names":["/web","/x"],"Name":"/alice_web","Config":{"Cmd":["/alice_web"]}}` {
		t.Errorf("Names: %s", got)
	}
	if got := string(MapStrings(obj, strip, "Name")); got != `{"Id":"1","Names":["/alice_web","/x"],"Name":"/web","Config":{"Cmd":["/alice_web"]}}` {
		t.Errorf("Name: %s", got)
	}
	for _, path := range [][]string{{"Missing"}, {"Id"}, {"Config"}} {
		if got := MapStrings(obj, strip, path...); &got[0] != &obj[0] {
			t.Errorf("%v: changed: %s", path, got)
		}
	}
}

func TestMapKeys(t *testing.T) {
	strip := func(s string) string {
		if len(s) > 6 && s[:6] == "alice_" {
			return s[6:]
		}
		return s
	}
	obj := []byte(`{"NetworkSettings":{"Networks":{"bridge":{"IPAddress":"1"},"alice_front":{"IPAddress":"2"}}},"X":1}`)
	if got := string(MapKeys(obj, strip, "NetworkSettings", "Networks")); got != `{"NetworkSettings":{"Networks":{"bridge":{"IPAddress":"1"},"front":{"IPAddress":"2"}}},"X":1}` {
		t.Errorf("MapKeys: %s", got)
	}
	if got := MapKeys(obj, strip, "X"); &got[0] != &obj[0] {
		t.Errorf("not an object: changed: %s", got)
	}
}
