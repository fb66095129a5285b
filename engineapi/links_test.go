package engineapi

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/moby/moby/api/types/network"
)

func TestParseLink(t *testing.T) {
	for in, want := range map[string][2]string{
		"db": {"db", "db"}, "/db:sql": {"db", "sql"}, "/db:/p/sql": {"db", "sql"}, "db:": {"db", "db"},
	} {
		if r, a := ParseLink(in); r != want[0] || a != want[1] {
			t.Errorf("ParseLink(%q) = %q, %q, want %v", in, r, a, want)
		}
	}
}

// The order and names an engine 20.10 set for the same link (the e2e test
// compares them on real engines).
func TestLinkEnv(t *testing.T) {
	ports := network.PortSet{}
	for _, p := range []string{"80/tcp", "8081/tcp", "8080/tcp", "53/udp"} {
		ports[network.MustParsePort(p)] = struct{}{}
	}
	got := LinkEnv("web", "my-db", LinkTarget{IP: netip.MustParseAddr("10.0.0.2"), ExposedPorts: ports,
		Env: []string{"PATH=/bin", "HOME=/", "K=v=w"}})
	want := []string{
		"MY_DB_PORT=udp://10.0.0.2:53",
		"MY_DB_PORT_53_UDP=udp://10.0.0.2:53", "MY_DB_PORT_53_UDP_ADDR=10.0.0.2", "MY_DB_PORT_53_UDP_PORT=53", "MY_DB_PORT_53_UDP_PROTO=udp",
		"MY_DB_PORT_80_TCP=tcp://10.0.0.2:80", "MY_DB_PORT_80_TCP_ADDR=10.0.0.2", "MY_DB_PORT_80_TCP_PORT=80", "MY_DB_PORT_80_TCP_PROTO=tcp",
		"MY_DB_PORT_8080_TCP=tcp://10.0.0.2:8080", "MY_DB_PORT_8080_TCP_ADDR=10.0.0.2", "MY_DB_PORT_8080_TCP_PORT=8080", "MY_DB_PORT_8080_TCP_PROTO=tcp",
		"MY_DB_PORT_8081_TCP=tcp://10.0.0.2:8081", "MY_DB_PORT_8081_TCP_ADDR=10.0.0.2", "MY_DB_PORT_8081_TCP_PORT=8081", "MY_DB_PORT_8081_TCP_PROTO=tcp",
		"MY_DB_NAME=/web/my-db", "MY_DB_ENV_K=v=w",
	}
	if !slices.Equal(got, want) {
		t.Errorf("LinkEnv:\n%q\nwant\n%q", got, want)
	}
	if got := MergeEnv([]string{"A=1", "B=2"}, []string{"B=3"}); !slices.Equal(got, []string{"A=1", "B=3"}) {
		t.Errorf("MergeEnv: %q", got)
	}
	if got := LinkHosts("x", "abc", "/db", netip.MustParseAddr("10.0.0.2")); !slices.Equal(got, []string{"x:10.0.0.2", "abc:10.0.0.2", "db:10.0.0.2"}) {
		t.Errorf("LinkHosts: %q", got)
	}
}

func TestShowLinks(t *testing.T) {
	in := `{"Name":"/p","HostConfig":{"Links":["/a:/p/a"]},"NetworkSettings":{"Networks":{"ln":{"Links":["/b:y"]}}}}`
	want := `{"Name":"/p","HostConfig":{"Links":["/a:/p/a","/b:/p/y"]},"NetworkSettings":{"Networks":{"ln":{"Links":["/b:y"]}}}}`
	if got := string(ShowLinks([]byte(in), "ln")); got != want {
		t.Errorf("ShowLinks:\n%s\nwant\n%s", got, want)
	}
	none := `{"Name":"/p","HostConfig":{"Links":null},"NetworkSettings":{"Networks":{"bridge":{"Links":null}}}}`
	if got := string(ShowLinks([]byte(none), "ln")); got != none {
		t.Errorf("ShowLinks changed %s", got)
	}
}
