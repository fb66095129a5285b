package deploy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"

	"github.com/compose-spec/compose-go/v2/types"
)

// The config hashes are docker compose's (github.com/docker/compose/v5
// pkg/compose/hash.go, Apache-2.0), so that `docker compose up` run later
// against a project Clocker deployed finds its containers up to date and
// recreates nothing. Compose pins the service hash's top-level key order;
// the list is compose v5.6.0's.
var serviceHashKeyOrder = []string{
	"profiles", "annotations", "attach", "build", "develop", "blkio_config", "cap_add", "cap_drop",
	"cgroup_parent", "cgroup", "cpu_count", "cpu_percent", "cpu_period", "cpu_quota", "cpu_rt_period",
	"cpu_rt_runtime", "cpus", "cpuset", "cpu_shares", "command", "configs", "container_name",
	"credential_spec", "depends_on", "deploy", "device_cgroup_rules", "devices", "dns", "dns_opt",
	"dns_search", "dockerfile", "domainname", "entrypoint", "provider", "environment", "env_file",
	"expose", "extends", "external_links", "extra_hosts", "group_add", "gpus", "hostname", "healthcheck",
	"image", "init", "ipc", "isolation", "labels", "label_file", "links", "logging", "log_driver",
	"log_opt", "mem_limit", "mem_reservation", "memswap_limit", "mem_swappiness", "mac_address",
	"models", "net", "network_mode", "networks", "oom_kill_disable", "oom_score_adj", "pid",
	"pids_limit", "platform", "ports", "privileged", "pull_policy", "read_only", "restart", "runtime",
	"scale", "secrets", "security_opt", "shm_size", "stdin_open", "stop_grace_period", "stop_signal",
	"storage_opt", "sysctls", "tmpfs", "tty", "ulimits", "use_api_socket", "user", "userns_mode", "uts",
	"volume_driver", "volumes", "volumes_from", "working_dir", "pre_start", "post_start", "pre_stop",
	"pull_refresh_after",
}

// ServiceHash is compose's com.docker.compose.config-hash of a service:
// build inputs, scale, replicas, depends_on and profiles left out.
func ServiceHash(o types.ServiceConfig) (string, error) {
	o.Build = nil
	o.PullPolicy = ""
	o.Scale = nil
	if o.Deploy != nil {
		d := *o.Deploy
		d.Replicas = nil
		o.Deploy = &d
	}
	o.DependsOn = nil
	o.Profiles = nil
	raw, err := json.Marshal(o)
	if err != nil {
		return "", err
	}
	var root map[string]json.RawMessage
	if err := json.Unmarshal(raw, &root); err != nil {
		return "", err
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	write := func(key string, val json.RawMessage) {
		if buf.Len() > 1 {
			buf.WriteByte(',')
		}
		name, _ := json.Marshal(key)
		buf.Write(name)
		buf.WriteByte(':')
		buf.Write(val)
	}
	for _, key := range serviceHashKeyOrder {
		if val, ok := root[key]; ok {
			write(key, val)
			delete(root, key)
		}
	}
	rest := make([]string, 0, len(root))
	for k := range root {
		rest = append(rest, k)
	}
	sort.Strings(rest)
	for _, k := range rest {
		write(k, root[k])
	}
	buf.WriteByte('}')
	return sha(buf.Bytes()), nil
}

// NetworkHash is compose's config hash of a network.
func NetworkHash(o types.NetworkConfig) (string, error) {
	raw, err := json.Marshal(&o)
	if err != nil {
		return "", err
	}
	return sha(raw), nil
}

// VolumeHash is compose's config hash of a volume.
func VolumeHash(o types.VolumeConfig) (string, error) {
	if o.Driver == "" {
		o.Driver = "local"
	}
	raw, err := json.Marshal(o)
	if err != nil {
		return "", err
	}
	return sha(raw), nil
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
