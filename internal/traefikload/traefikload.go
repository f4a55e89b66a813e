// Package traefikload loads a Traefik middleware plugin the way Traefik
// v3's plugin loader does, for tests: the plugin's directory (vendor/
// included) under plugins-local/src/<module>, an interpreter of Yaegi
// v0.16.1 with that GOPATH, the process environment and stdlib.Symbols,
// `import "<module>"`, and then, per middleware, CreateConfig, the
// middleware's options decoded into the config by mapstructure exactly as
// Traefik decodes a plugin's dynamic configuration, and New.
package traefikload

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/mitchellh/mapstructure"
	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
	"go.yaml.in/yaml/v3"
)

// Manifest is a plugin's .traefik.yml.
type Manifest struct {
	DisplayName string         `yaml:"displayName"`
	Type        string         `yaml:"type"`
	Import      string         `yaml:"import"`
	BasePkg     string         `yaml:"basePkg"`
	Summary     string         `yaml:"summary"`
	TestData    map[string]any `yaml:"testData"`
}

// Plugin is a loaded middleware plugin.
type Plugin struct {
	Manifest Manifest
	// Interp is the plugin's interpreter, for tests that evaluate more of
	// the plugin's package (basePkg + ".Name").
	Interp  *interp.Interpreter
	BasePkg string

	createConfig reflect.Value
	newHandler   reflect.Value
}

// ReadManifest reads dir/.traefik.yml and checks what Traefik requires of a
// middleware plugin's manifest.
func ReadManifest(dir string) (Manifest, error) {
	var m Manifest
	data, err := os.ReadFile(filepath.Join(dir, ".traefik.yml"))
	if err != nil {
		return m, err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(false)
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf(".traefik.yml: %w", err)
	}
	switch {
	case m.Type != "middleware":
		return m, fmt.Errorf(".traefik.yml: type %q, want middleware", m.Type)
	case m.Import == "":
		return m, errors.New(".traefik.yml: no import")
	case m.DisplayName == "" || m.Summary == "":
		return m, errors.New(".traefik.yml: displayName and summary are required")
	case len(m.TestData) == 0:
		return m, errors.New(".traefik.yml: no testData")
	}
	return m, nil
}

// Load copies the plugin in dir to pluginsLocal/src/<its import path>, as a
// user installs a local plugin, and loads it from there.
func Load(pluginsLocal, dir string) (*Plugin, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	dst := filepath.Join(pluginsLocal, "src", filepath.FromSlash(m.Import))
	if err := copyTree(dst, dir); err != nil {
		return nil, err
	}
	i := interp.New(interp.Options{GoPath: pluginsLocal, Env: os.Environ()})
	if err := i.Use(stdlib.Symbols); err != nil {
		return nil, fmt.Errorf("failed to load symbols: %w", err)
	}
	if _, err := i.Eval(fmt.Sprintf("import %q", m.Import)); err != nil {
		return nil, fmt.Errorf("failed to import plugin code %q: %w", m.Import, err)
	}
	p := &Plugin{Manifest: m, Interp: i, BasePkg: m.BasePkg}
	if p.BasePkg == "" {
		p.BasePkg = strings.ReplaceAll(path.Base(m.Import), "-", "_")
	}
	if p.newHandler, err = i.Eval(p.BasePkg + ".New"); err != nil {
		return nil, fmt.Errorf("failed to eval New: %w", err)
	}
	if p.createConfig, err = i.Eval(p.BasePkg + ".CreateConfig"); err != nil {
		return nil, fmt.Errorf("failed to eval CreateConfig: %w", err)
	}
	return p, nil
}

// Config returns a new configuration (CreateConfig) with the middleware's
// options decoded into it as Traefik decodes them: mapstructure, weakly
// typed input, comma-separated strings into slices.
func (p *Plugin) Config(options map[string]any) (reflect.Value, error) {
	out := p.createConfig.Call(nil)
	if len(out) != 1 {
		return reflect.Value{}, fmt.Errorf("invalid number of return for the CreateConfig function: %d", len(out))
	}
	cfg := out[0]
	if len(options) == 0 {
		return cfg, nil
	}
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:       mapstructure.StringToSliceHookFunc(","),
		WeaklyTypedInput: true,
		Result:           cfg.Interface(),
	})
	if err != nil {
		return reflect.Value{}, fmt.Errorf("failed to create configuration decoder: %w", err)
	}
	if err := dec.Decode(options); err != nil {
		return reflect.Value{}, fmt.Errorf("failed to decode configuration: %w", err)
	}
	return cfg, nil
}

// New builds the middleware called name with the given options in front
// of next, as Traefik does for each router that uses it.
func (p *Plugin) New(ctx context.Context, next http.Handler, options map[string]any, name string) (http.Handler, error) {
	cfg, err := p.Config(options)
	if err != nil {
		return nil, err
	}
	out := p.newHandler.Call([]reflect.Value{reflect.ValueOf(ctx), reflect.ValueOf(next), cfg, reflect.ValueOf(name)})
	if len(out) > 1 && out[1].Interface() != nil {
		err, ok := out[1].Interface().(error)
		if !ok {
			return nil, fmt.Errorf("invalid error type: %T", out[1].Interface())
		}
		return nil, err
	}
	h, ok := out[0].Interface().(http.Handler)
	if !ok {
		return nil, fmt.Errorf("invalid handler type: %T", out[0].Interface())
	}
	return h, nil
}

// copyTree copies the regular files below src to dst.
func copyTree(dst, src string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}
