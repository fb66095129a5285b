// Package testfleet runs a fleet of real Docker engines on the local machine
// for end-to-end tests.
//
// Each engine is a dockerd in its own network namespace, made and removed by
// the script fleet.sh that sits next to this file (see its header for
// details). Every engine reports its host name as Name in `docker info`, has
// busybox:latest loaded (the same image ID on every engine), and listens both
// on a unix socket and on plain TCP at its namespace address, which the root
// namespace reaches over a bridge.
//
// Everything here needs root and the tools listed in fleet.sh; tests should
// call [Enabled] and skip when it reports false.
package testfleet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// EnvVar is the environment variable that must be "1" for end-to-end tests
// that use a fleet to run.
const EnvVar = "CLOCKER_E2E"

// ScriptEnvVar, when set, overrides where fleet.sh is looked for.
const ScriptEnvVar = "CLOCKER_FLEET_SH"

// Engine is one test host and its Docker engine.
type Engine struct {
	// Name is the host name: the network namespace's name and what the
	// engine reports as Name in `docker info`.
	Name string
	// Addr is the host's IPv4 address on the fleet bridge.
	Addr string
	// TCP is the engine's plain-TCP endpoint, "tcp://Addr:2375".
	TCP string
	// Unix is the engine's unix socket endpoint, "unix:///run/PREFIX/NAME/docker.sock".
	Unix string
}

// Fleet is a running set of engines made by [Start].
//
// Its methods may be called concurrently; fleet.sh serializes the ones that
// change the fleet.
type Fleet struct {
	// Prefix names the fleet: hosts are Prefix1..PrefixN, state lives under
	// /var/lib/Prefix and /run/Prefix.
	Prefix string
	// Engines are the hosts, in order 1..N.
	Engines []Engine

	script string
	env    []string // for fleet.sh beyond PREFIX (FLEET_TLS_DIR)
}

// Enabled reports whether end-to-end tests with a fleet can run here: the
// environment variable EnvVar is "1" and the process runs as root. When not,
// the string says why, suitable for testing.T.Skip.
func Enabled() (bool, string) {
	if os.Getenv(EnvVar) != "1" {
		return false, EnvVar + "=1 not set"
	}
	if os.Geteuid() != 0 {
		return false, "needs root"
	}
	return true, ""
}

// Script returns the path of fleet.sh. It is located next to this Go source
// file (so tests of any package find it), or taken from $CLOCKER_FLEET_SH,
// or found by walking up from the working directory to the module root.
func Script() (string, error) {
	if p := os.Getenv(ScriptEnvVar); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("testfleet: %s: %w", ScriptEnvVar, err)
		}
		return p, nil
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		p := filepath.Join(filepath.Dir(file), "fleet.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	// Built with -trimpath: look for the file from the working directory up.
	if dir, err := os.Getwd(); err == nil {
		for {
			p := filepath.Join(dir, "internal", "testfleet", "fleet.sh")
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", errors.New("testfleet: fleet.sh not found (set " + ScriptEnvVar + ")")
}

// Start creates a fleet of n engines named prefix1..prefixN by running
// `fleet.sh up n`; a previous fleet with the same prefix is removed first.
// prefix must match [a-z][a-z0-9]{0,9}. On failure whatever was made is
// removed again. Callers should arrange for [Fleet.Stop] to run.
func Start(ctx context.Context, prefix string, n int) (*Fleet, error) {
	return start(ctx, prefix, n, nil)
}

// StartTLS is Start with engines that listen on tcp://ADDR:2376 with
// --tlsverify, from the certificates WritePKI wrote to dir.
func StartTLS(ctx context.Context, prefix string, n int, dir string) (*Fleet, error) {
	return start(ctx, prefix, n, []string{"FLEET_TLS_DIR=" + dir})
}

func start(ctx context.Context, prefix string, n int, env []string) (*Fleet, error) {
	if !prefixRE.MatchString(prefix) {
		return nil, fmt.Errorf("testfleet: prefix %q must match %s", prefix, prefixRE)
	}
	if n < 1 || n > 50 {
		return nil, fmt.Errorf("testfleet: %d engines asked for, want 1..50", n)
	}
	script, err := Script()
	if err != nil {
		return nil, err
	}
	f := &Fleet{Prefix: prefix, script: script, env: env}
	out, err := f.run(ctx, "up", fmt.Sprint(n))
	if err == nil {
		f.Engines, err = parseEngines(out)
		if err == nil && len(f.Engines) != n {
			err = fmt.Errorf("testfleet: fleet.sh up %d listed %d engines", n, len(f.Engines))
		}
	}
	if err != nil {
		// Clean up even if ctx is what failed.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, derr := f.run(dctx, "down"); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, err
	}
	return f, nil
}

// prefixRE is what fleet.sh accepts as a prefix (interface names such as
// PREFIXbr0 must fit in 15 bytes).
var prefixRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,9}$`)

// parseEngines reads the lines "NAME ADDR tcp://ADDR:2375 unix://SOCKET"
// that fleet.sh prints.
func parseEngines(out string) ([]Engine, error) {
	var es []Engine
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) != 4 || !strings.HasPrefix(fs[2], "tcp://") || !strings.HasPrefix(fs[3], "unix://") {
			return nil, fmt.Errorf("testfleet: unexpected line from fleet.sh: %q", line)
		}
		es = append(es, Engine{Name: fs[0], Addr: fs[1], TCP: fs[2], Unix: fs[3]})
	}
	return es, sc.Err()
}

// Stop removes the whole fleet (`fleet.sh down`): engines, their containers,
// namespaces, links, firewall rules and state. It is idempotent.
func (f *Fleet) Stop(ctx context.Context) error {
	_, err := f.run(ctx, "down")
	return err
}

// StopEngine stops one engine's dockerd gracefully (`fleet.sh stop NAME`):
// SIGTERM, then waits for it to exit. Like any dockerd shutdown this stops
// its running containers, giving each its stop timeout (10s by default).
// The host's namespace and address stay.
func (f *Fleet) StopEngine(ctx context.Context, name string) error {
	if _, err := f.Engine(name); err != nil {
		return err
	}
	_, err := f.run(ctx, "stop", name)
	return err
}

// KillEngine crashes one engine at once (`fleet.sh kill NAME`): SIGKILL to
// its dockerd, containerd and containers, then its mounts are dropped as on
// a reboot. [Fleet.StartEngine] brings it back.
func (f *Fleet) KillEngine(ctx context.Context, name string) error {
	if _, err := f.Engine(name); err != nil {
		return err
	}
	_, err := f.run(ctx, "kill", name)
	return err
}

// StartEngine starts a stopped engine again with the same settings
// (`fleet.sh start NAME`) and waits until it answers.
func (f *Fleet) StartEngine(ctx context.Context, name string) error {
	if _, err := f.Engine(name); err != nil {
		return err
	}
	_, err := f.run(ctx, "start", name)
	return err
}

// Engine returns the engine with the given name.
func (f *Fleet) Engine(name string) (Engine, error) {
	for _, e := range f.Engines {
		if e.Name == name {
			return e, nil
		}
	}
	return Engine{}, fmt.Errorf("testfleet: no engine %q in fleet %s", name, f.Prefix)
}

// Docker runs the docker CLI against the named engine's unix socket with
// the given arguments and returns its combined stdout and stderr. A non-zero
// exit is an error that carries the output.
func (f *Fleet) Docker(ctx context.Context, engine string, args ...string) (string, error) {
	e, err := f.Engine(engine)
	if err != nil {
		return "", err
	}
	bin, err := dockerCLI()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"-H", e.Unix}, args...)...)
	cmd.Env = cleanEnv()
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("testfleet: docker %s on %s: %w: %s",
			strings.Join(args, " "), engine, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func dockerCLI() (string, error) {
	if p, err := exec.LookPath("docker"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/local/bin/docker", "/usr/bin/docker"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("testfleet: docker CLI not found")
}

// cleanEnv is the process environment without the variables that would
// point the docker CLI elsewhere than -H.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "PREFIX":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// run runs fleet.sh with the fleet's prefix and returns its stdout. Its
// stderr (diagnostics) is part of the error on failure. When ctx ends the
// script's whole process group is killed; the engines it started run in
// sessions of their own and are left to `down`.
func (f *Fleet) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "bash", append([]string{f.script}, args...)...)
	cmd.Env = append(append(cleanEnv(), "PREFIX="+f.Prefix), f.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("testfleet: fleet.sh %s (PREFIX=%s): %w\n%s",
			strings.Join(args, " "), f.Prefix, err, tail(stderr.String(), 60))
	}
	return stdout.String(), nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
