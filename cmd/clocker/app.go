package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/compose-spec/compose-go/v2/loader"
	"go.yaml.in/yaml/v3"

	"github.com/clocker/clocker/compose/deploy"
)

const appUsage = `Usage: clocker app [--host URL] COMMAND

Deploy and manage applications described as Apache Brooklyn blueprints
(CAMP YAML) or compose files, through a running clocker serve's Brooklyn
API (/v1/applications).

Commands:
  deploy [-p NAME] FILE|-
                  deploy a blueprint or a compose file (- reads it from stdin);
                  prints the application's id (a compose file's: its project
                  name: -p, else its name:, else its directory's name)
  ls              list the applications
  show APP        the application's entities and their sensors (APP: id or name)
  rm APP          stop and remove the application: its containers, volumes and network

--host (or CLOCKER_HOST) finds the server: tcp://HOST:PORT or unix:///PATH
(default tcp://127.0.0.1:2375).
`

type appUsageError string

func (e appUsageError) Error() string { return string(e) + "\n\n" + appUsage }

// appCmd is `clocker app …`: a client of the Brooklyn API, as br is.
func appCmd(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("clocker app", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	server := fs.String("host", "", "")
	if err := fs.Parse(args); err != nil {
		return appUsageError(err.Error())
	}
	if *server == "" {
		*server = os.Getenv("CLOCKER_HOST")
	}
	if *server == "" {
		*server = defaultListen
	}
	fc, err := newFleetClient(*server)
	if err != nil {
		return err
	}
	c := &brooklynClient{http: fc.http, base: strings.TrimSuffix(fc.base, "/fleet")}
	args = fs.Args()
	if len(args) == 0 {
		return appUsageError("a command is required")
	}
	cmd, args := args[0], args[1:]
	one := func() (string, error) {
		if len(args) != 1 {
			return "", appUsageError(cmd + " takes one APP")
		}
		return url.PathEscape(args[0]), nil
	}
	switch cmd {
	case "deploy":
		dfs := flag.NewFlagSet("clocker app deploy", flag.ContinueOnError)
		dfs.SetOutput(io.Discard)
		project := dfs.String("p", "", "")
		if err := dfs.Parse(args); err != nil {
			return appUsageError(err.Error())
		}
		args = dfs.Args()
		if len(args) != 1 {
			return appUsageError("deploy takes one FILE, or - for stdin")
		}
		var plan []byte
		if args[0] == "-" {
			plan, err = io.ReadAll(stdin)
		} else {
			plan, err = os.ReadFile(args[0])
		}
		if err != nil {
			return err
		}
		path := "/applications"
		if deploy.IsCompose(plan) {
			q, err := composeQuery(args[0], *project, plan)
			if err != nil {
				return err
			}
			path += "?" + q.Encode()
		} else if *project != "" {
			return appUsageError("-p names a compose project; the file is a blueprint")
		}
		var task struct{ EntityID, EntityDisplayName string }
		if err := c.do(http.MethodPost, path, "application/x-yaml", plan, &task); err != nil {
			return err
		}
		fmt.Fprintln(stdout, task.EntityID)
	case "ls":
		if len(args) != 0 {
			return appUsageError("ls takes no arguments")
		}
		var apps []struct {
			ID     string
			Status string
			Spec   struct{ Name string }
		}
		if err := c.do(http.MethodGet, "/applications", "", nil, &apps); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSTATUS")
		for _, a := range apps {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", a.ID, a.Spec.Name, a.Status)
		}
		return tw.Flush()
	case "show":
		app, err := one()
		if err != nil {
			return err
		}
		return c.show(stdout, app)
	case "rm":
		app, err := one()
		if err != nil {
			return err
		}
		var task struct{ ID string }
		if err := c.do(http.MethodDelete, "/applications/"+app, "", nil, &task); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "removing", args[0], "(task "+task.ID+")")
	default:
		return appUsageError(fmt.Sprintf("unknown command %q", cmd))
	}
	return nil
}

// composeQuery tells the server what docker compose would take from the
// client's machine: the project directory and file (for compose's
// labels), and the project name (-p, else the file's name:, else the
// directory's name, as compose picks it).
func composeQuery(file, project string, body []byte) (url.Values, error) {
	q := url.Values{}
	dir, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	if file != "-" {
		abs, err := filepath.Abs(file)
		if err != nil {
			return nil, err
		}
		dir = filepath.Dir(abs)
		q.Set("file", abs)
	}
	q.Set("workdir", dir)
	var top struct{ Name string }
	_ = yaml.Unmarshal(body, &top)
	switch {
	case project != "":
		q.Set("name", project)
	case top.Name == "":
		q.Set("name", loader.NormalizeProjectName(filepath.Base(dir)))
	}
	return q, nil
}

type brooklynClient struct {
	http *http.Client
	base string
}

// do sends body (of type ct) and decodes a 2xx JSON answer into out; an
// error answer becomes its ApiError message.
func (c *brooklynClient) do(method, path, ct string, body []byte, out any) error {
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach clocker: %w", err)
	}
	return readAnswer(resp, method, path, out)
}

// show prints the application, then each entity with its sensors.
func (c *brooklynClient) show(w io.Writer, app string) error {
	var a struct {
		ID, Status string
		Spec       struct{ Name string }
	}
	if err := c.do(http.MethodGet, "/applications/"+app, "", nil, &a); err != nil {
		return err
	}
	fmt.Fprintf(w, "%s %s %s\n", a.ID, a.Spec.Name, a.Status)
	var ents []struct{ ID, Name, Type string }
	if err := c.do(http.MethodGet, "/applications/"+a.ID+"/entities/"+a.ID+"/descendants", "", nil, &ents); err != nil {
		return err
	}
	for _, e := range ents {
		fmt.Fprintf(w, "\n%s %s (%s)\n", e.ID, e.Name, e.Type)
		var sensors map[string]any
		if err := c.do(http.MethodGet, "/applications/"+a.ID+"/entities/"+e.ID+"/sensors/current-state", "", nil, &sensors); err != nil {
			return err
		}
		keys := make([]string, 0, len(sensors))
		for k := range sensors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %s: %v\n", k, sensors[k])
		}
	}
	return nil
}
