package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	units "github.com/docker/go-units"
)

const hostUsage = `Usage: clocker host [--host URL] COMMAND

Manage the fleet's hosts through a running clocker serve.

Commands:
  ls                       list the hosts
  add [NAME=]URL           add an engine (it must answer); NAME defaults to its own
  add --local [NAME]       make a local host (an engine in a network namespace)
  add --ssh [USER@]ADDR[:PORT] [NAME]
                           turn a Linux machine into a host over SSH (Docker
                           installed if missing, engine started with TLS)
  rm NAME                  remove a host (one with containers must be drained first)
  drain [--undo] NAME      take no new containers there (--undo: take them again)
  label NAME KEY=VALUE...  set Clocker labels of the host (KEY= removes one)

--host (or CLOCKER_HOST) finds the server: tcp://HOST:PORT or unix:///PATH
(default tcp://127.0.0.1:2375).
`

// defaultListen is where serve listens and the CLI looks by default.
const defaultListen = "tcp://127.0.0.1:2375"

// hostCmd is `clocker host …`: a client of the fleet API.
func hostCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("clocker host", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	server := fs.String("host", "", "")
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	if *server == "" {
		*server = os.Getenv("CLOCKER_HOST")
	}
	if *server == "" {
		*server = defaultListen
	}
	c, err := newFleetClient(*server)
	if err != nil {
		return err
	}
	args = fs.Args()
	if len(args) == 0 {
		return usageError("a command is required")
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "ls":
		if len(args) != 0 {
			return usageError("ls takes no arguments")
		}
		var hs []fleetHost
		if err := c.call(http.MethodGet, "/hosts", nil, &hs); err != nil {
			return err
		}
		printHosts(stdout, hs)
	case "add":
		body, err := parseHostAdd(args)
		if err != nil {
			return err
		}
		if body["Provisioner"] != "" {
			c.http.Timeout = 10 * time.Minute // a machine is made: SSH may install Docker
		}
		var h fleetHost
		if err := c.call(http.MethodPost, "/hosts", body, &h); err != nil {
			return err
		}
		fmt.Fprintln(stdout, h.Name)
	case "rm":
		if len(args) != 1 {
			return usageError("rm takes one NAME")
		}
		c.http.Timeout = 3 * time.Minute // a provisioned host's engine stops first
		if err := c.call(http.MethodDelete, "/hosts/"+url.PathEscape(args[0]), nil, nil); err != nil {
			return err
		}
		fmt.Fprintln(stdout, args[0])
	case "drain":
		undo := len(args) > 0 && args[0] == "--undo"
		if undo {
			args = args[1:]
		}
		if len(args) != 1 {
			return usageError("drain takes one NAME")
		}
		path := "/hosts/" + url.PathEscape(args[0]) + "/drain"
		if undo {
			path += "?drain=false"
		}
		var h fleetHost
		if err := c.call(http.MethodPost, path, nil, &h); err != nil {
			return err
		}
		fmt.Fprintln(stdout, h.Name, h.State)
	case "label":
		if len(args) < 2 {
			return usageError("label takes NAME and KEY=VALUE...")
		}
		labels := map[string]string{}
		for _, kv := range args[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return usageError(fmt.Sprintf("label %q: want KEY=VALUE (KEY= removes it)", kv))
			}
			labels[k] = v
		}
		var h fleetHost
		if err := c.call(http.MethodPost, "/hosts/"+url.PathEscape(args[0])+"/labels", map[string]any{"Labels": labels}, &h); err != nil {
			return err
		}
		fmt.Fprintln(stdout, h.Name, formatLabels(h.ClockerLabels))
	default:
		return usageError(fmt.Sprintf("unknown command %q", cmd))
	}
	return nil
}

// parseHostAdd reads `add`'s arguments into the fleet API's body.
func parseHostAdd(args []string) (map[string]string, error) {
	switch {
	case len(args) >= 1 && args[0] == "--local":
		if len(args) > 2 {
			return nil, usageError("add --local takes at most a NAME")
		}
		body := map[string]string{"Provisioner": "local"}
		if len(args) == 2 {
			body["Name"] = args[1]
		}
		return body, nil
	case len(args) >= 1 && args[0] == "--ssh":
		if len(args) < 2 || len(args) > 3 {
			return nil, usageError("add --ssh takes [USER@]ADDR[:PORT] and an optional NAME")
		}
		body := map[string]string{"Provisioner": "ssh", "Target": args[1]}
		if len(args) == 3 {
			body["Name"] = args[2]
		}
		return body, nil
	case len(args) != 1 || strings.HasPrefix(args[0], "-"):
		return nil, usageError("add takes one [NAME=]URL, --local [NAME] or --ssh TARGET [NAME]")
	}
	name, u := "", args[0]
	if n, rest, ok := strings.Cut(args[0], "="); ok && !strings.Contains(n, "://") {
		name, u = n, rest
	}
	return map[string]string{"Name": name, "URL": u}, nil
}

// usageError is a command-line mistake: the usage follows it.
type usageError string

func (e usageError) Error() string { return string(e) + "\n\n" + hostUsage }

// fleetHost is the fleet API's host (proxy.fleetHost) as the CLI reads it.
type fleetHost struct {
	Name, Address, Provisioner, State string
	Containers, NCPU                  int
	ReservedCPUs                      float64
	MemTotal, ReservedMemory          int64
	Labels, ClockerLabels             map[string]string
	Error                             string
}

func printHosts(w io.Writer, hs []fleetHost) {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDRESS\tPROVISIONER\tSTATE\tCONTAINERS\tCPUS\tMEMORY\tLABELS")
	for _, h := range hs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%g / %d\t%s / %s\t%s\n", h.Name, h.Address, h.Provisioner, h.State,
			h.Containers, h.ReservedCPUs, h.NCPU,
			units.BytesSize(float64(h.ReservedMemory)), units.BytesSize(float64(h.MemTotal)), formatLabels(h.Labels))
	}
	_ = tw.Flush()
}

func formatLabels(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// fleetClient calls the fleet API of a clocker serve.
type fleetClient struct {
	http *http.Client
	base string
}

func newFleetClient(server string) (*fleetClient, error) {
	u, err := url.Parse(server)
	if err != nil {
		return nil, fmt.Errorf("--host %q: %v", server, err)
	}
	tr := &http.Transport{}
	base := "http://clocker"
	switch u.Scheme {
	case "tcp", "http":
		if u.Host == "" {
			return nil, fmt.Errorf("--host %q: want tcp://HOST:PORT or unix:///PATH", server)
		}
		base = "http://" + u.Host
	case "unix":
		path := u.Path
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}
	default:
		return nil, fmt.Errorf("--host %q: want tcp://HOST:PORT or unix:///PATH", server)
	}
	return &fleetClient{http: &http.Client{Transport: tr, Timeout: 30 * time.Second}, base: base + "/v1/fleet"}, nil
}

// call sends body as JSON and decodes a 2xx answer into out; an error
// answer becomes the server's message.
func (c *fleetClient) call(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach clocker: %w", err)
	}
	return readAnswer(resp, method, path, out)
}

// readAnswer reads an answer of Clocker's /v1 API (the fleet's and
// Brooklyn's, both with a JSON {"message"} on errors): an error carrying
// the message, else the body decoded into out when there is one.
func readAnswer(resp *http.Response, method, path string, out any) error {
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct{ Message string }
		if json.Unmarshal(data, &e) == nil && e.Message != "" {
			return errors.New(e.Message)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}
