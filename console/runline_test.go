package console

import (
	"encoding/json"
	"testing"
)

func TestParseRunLine(t *testing.T) {
	for _, tt := range []struct{ line, name, want string }{
		{"docker run busybox", "", `{"HostConfig":{},"Image":"busybox"}`},
		{"docker run -dit --rm --name web -m 1g --cpus=1.5 -c 512 busybox sh -c 'echo hi; sleep 1'", "web",
			`{"Cmd":["sh","-c","echo hi; sleep 1"],"HostConfig":{"AutoRemove":true,"CpuShares":512,"Memory":1073741824,"NanoCpus":1500000000},"Image":"busybox","OpenStdin":true,"Tty":true}`},
		{`run -e "A=b c" -e constraint:node==h1 -l x=y -p 127.0.0.1:80:8080/udp -P nginx`, "",
			`{"Env":["A=b c","constraint:node==h1"],"ExposedPorts":{"8080/udp":{}},"HostConfig":{"PortBindings":{"8080/udp":[{"HostIp":"127.0.0.1","HostPort":"80"}]},"PublishAllPorts":true},"Image":"nginx","Labels":{"x":"y"}}`},
		{"docker container run --network app --ip 10.200.0.9 --network-alias www -v data:/data --volumes-from db busybox", "",
			`{"HostConfig":{"Binds":["data:/data"],"NetworkMode":"app","VolumesFrom":["db"]},"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"app":{"Aliases":["www"],"IPAMConfig":{"IPv4Address":"10.200.0.9"}}}}}`},
	} {
		rl, err := ParseRunLine(tt.line)
		if err != nil {
			t.Errorf("%s: %v", tt.line, err)
			continue
		}
		b, _ := json.Marshal(rl.Body)
		if rl.Name != tt.name || string(b) != tt.want {
			t.Errorf("%s:\n got %s %s\nwant %s %s", tt.line, rl.Name, b, tt.name, tt.want)
		}
	}
	for _, line := range []string{"", "docker run", "docker run --ip 10.0.0.1 busybox", "docker run -p 99999 busybox", "docker run --cpus x busybox", "docker run --name"} {
		if _, err := ParseRunLine(line); err == nil {
			t.Errorf("%q: no error", line)
		}
	}
}
