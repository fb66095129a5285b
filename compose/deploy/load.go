package deploy

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"

	"github.com/clocker/clocker/internal/errdefs"
)

// Source is a compose file as posted, with what the client knows and the
// server does not: where the file lives on the client's machine.
type Source struct {
	// File is the compose file's content.
	File []byte
	// Name is the project name when given (as `docker compose -p`); it
	// wins over the file's top-level name.
	Name string
	// WorkingDir is the project directory on the client's machine
	// (relative bind mounts resolve against it, and compose records it in
	// a label); default "/".
	WorkingDir string
	// Path is the file's path on the client's machine (the config_files
	// label); default WorkingDir/docker-compose.yml.
	Path string
	// Profiles are the profiles to enable (`--profile`).
	Profiles []string
}

// IsCompose tells a compose file from a Brooklyn blueprint: a compose
// file's top-level services is a map (of service name to service), a
// blueprint's a list.
func IsCompose(body []byte) bool {
	var doc yaml.Node
	if yaml.Unmarshal(body, &doc) != nil || len(doc.Content) == 0 {
		return false
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value == "services" {
			return top.Content[i+1].Kind == yaml.MappingNode
		}
	}
	return false
}

// invalid is a refused compose file: ErrInvalid (400), nothing made.
func invalid(format string, a ...any) error {
	return errdefs.New(errdefs.ErrInvalid, "invalid compose file: "+fmt.Sprintf(format, a...))
}

// Load parses a compose file with compose-go, the reference parser
// (interpolation, extends within the file, profiles, normalisation, the
// spec's validation), as `docker compose` would in src.WorkingDir. The
// server reads no file and no variable of its own: interpolation sees
// only defaults written in the file, and env_file, label_file, include,
// extends of another file, secrets and configs are refused by name.
func Load(ctx context.Context, src Source) (*types.Project, error) {
	if err := refuseFileReferences(src.File); err != nil {
		return nil, err
	}
	wd := src.WorkingDir
	if wd == "" {
		wd = "/"
	}
	if !path.IsAbs(wd) {
		return nil, invalid("working directory %q is not absolute", wd)
	}
	file := src.Path
	if file == "" {
		file = path.Join(wd, "docker-compose.yml")
	}
	name := loader.NormalizeProjectName(src.Name)
	details := types.ConfigDetails{
		WorkingDir:  wd,
		ConfigFiles: []types.ConfigFile{{Filename: file, Content: src.File}},
		Environment: types.Mapping{},
	}
	p, err := loader.LoadWithContext(ctx, details, func(o *loader.Options) {
		if name != "" {
			o.SetProjectName(name, true)
		}
		o.ResolvePaths = true
		o.Profiles = src.Profiles
		o.ResourceLoaders = []loader.ResourceLoader{noFiles{}}
	})
	if err != nil {
		var bad *noFileError
		if errors.As(err, &bad) {
			return nil, invalid("%s refers to %q: Clocker reads no file of the client's machine (inline it, or use docker compose up)", bad.what, bad.path)
		}
		return nil, invalid("%v", err)
	}
	p.ComposeFiles = []string{file} // the config_files label
	if p.Name == "" {
		return nil, invalid("no project name: give the file a top-level name, or ?name= (clocker app deploy -p)")
	}
	if err := checkSupported(p); err != nil {
		return nil, err
	}
	return p, nil
}

// refuseFileReferences names the first key that would make the loader
// read a file of the server's (compose-go reads env_file and label_file
// itself, outside the resource loaders).
func refuseFileReferences(body []byte) error {
	var doc map[string]any
	if err := yaml.Unmarshal(body, &doc); err != nil {
		return invalid("%v", err)
	}
	for _, k := range []string{"secrets", "configs"} {
		if doc[k] != nil {
			return invalid("top-level %s are not deployed by Clocker (they are files of the client's machine); use docker compose up", k)
		}
	}
	services, _ := doc["services"].(map[string]any)
	names := make([]string, 0, len(services))
	for n := range services {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s, _ := services[n].(map[string]any)
		for _, k := range []string{"env_file", "label_file"} {
			if s[k] != nil {
				return invalid("service %s: %s refers to a file of the client's machine, which Clocker cannot read (use environment/labels)", n, k)
			}
		}
	}
	return nil
}

// noFiles is the only resource loader: include and extends of another
// file fail with the path named.
type noFiles struct{}

type noFileError struct{ what, path string }

func (e *noFileError) Error() string { return e.what + " " + e.path + ": no file is read" }

func (noFiles) Accept(string) bool { return true }
func (noFiles) Load(_ context.Context, p string) (string, error) {
	return "", &noFileError{what: "include or extends", path: p}
}
func (noFiles) Dir(p string) string { return path.Dir(p) }

// checkSupported refuses what a server-side deploy cannot do, naming the
// service and the key.
func checkSupported(p *types.Project) error {
	for _, name := range p.ServiceNames() {
		s := p.Services[name]
		if s.Image == "" {
			return invalid("service %s has no image: Clocker does not build (docker compose build, then deploy)", name)
		}
		if s.Provider != nil {
			return invalid("service %s: provider services are not deployed by Clocker", name)
		}
		for _, mode := range []string{s.NetworkMode, s.Ipc, s.Pid} {
			if strings.HasPrefix(mode, types.ServicePrefix) || strings.HasPrefix(mode, types.ContainerPrefix) {
				return invalid("service %s: %q (sharing another container's namespace) is not deployed by Clocker", name, mode)
			}
		}
		if len(s.VolumesFrom) > 0 {
			return invalid("service %s: volumes_from is not deployed by Clocker", name)
		}
		if len(s.PreStart)+len(s.PostStart)+len(s.PreStop) > 0 {
			return invalid("service %s: lifecycle hooks are not deployed by Clocker", name)
		}
		if s.Deploy != nil && s.Deploy.Mode != "" && s.Deploy.Mode != "replicated" {
			return invalid("service %s: deploy.mode %s is not supported (replicated only)", name, s.Deploy.Mode)
		}
		for dep := range s.DependsOn {
			if _, ok := p.Services[dep]; !ok {
				return invalid("service %s depends on unknown service %s", name, dep)
			}
		}
	}
	return nil
}
