package check

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Line int
	Cmd  string // upper case: FROM, RUN, ...
	Args string
}

// readDockerfile splits a Dockerfile into instructions (comments and
// parser directives dropped, backslash continuations joined), refusing
// instructions Docker does not know.
func readDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{"FROM": true, "RUN": true, "CMD": true, "LABEL": true, "EXPOSE": true, "ENV": true, "ADD": true,
		"COPY": true, "ENTRYPOINT": true, "VOLUME": true, "USER": true, "WORKDIR": true, "ARG": true, "ONBUILD": true,
		"STOPSIGNAL": true, "HEALTHCHECK": true, "SHELL": true}
	var out []instruction
	var cur *instruction
	for i, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == nil && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur != nil && strings.HasPrefix(trimmed, "#") {
			continue
		}
		cont := strings.HasSuffix(trimmed, "\\")
		text := strings.TrimSuffix(trimmed, "\\")
		if cur == nil {
			cmd, args, _ := strings.Cut(text, " ")
			cur = &instruction{Line: i + 1, Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)}
			if !known[cur.Cmd] {
				t.Fatalf("%s:%d: unknown instruction %s", path, i+1, cmd)
			}
		} else {
			cur.Args += " " + strings.TrimSpace(text)
		}
		if !cont {
			out = append(out, *cur)
			cur = nil
		}
	}
	return out
}

// jsonArgs decodes the exec (JSON array) form, which the image needs: it
// has no shell to run the other form.
func jsonArgs(t *testing.T, in instruction) []string {
	t.Helper()
	var args []string
	if err := json.Unmarshal([]byte(in.Args), &args); err != nil {
		t.Fatalf("Dockerfile:%d: %s must use the exec form [\"...\"] (distroless has no shell): %v", in.Line, in.Cmd, err)
	}
	return args
}

// image is what the final stage of the root Dockerfile makes.
type image struct {
	Entrypoint  []string
	Cmd         []string
	Env         map[string]string
	User        string
	Expose      []int
	Healthcheck []string
	BinaryPath  string // where the binary is copied to
	Base        string
}

// rootImage reads the root Dockerfile's final stage.
func rootImage(t *testing.T) image {
	t.Helper()
	ins := readDockerfile(t, inRepo(t, "Dockerfile"))
	last := 0
	for i, in := range ins {
		if in.Cmd == "FROM" {
			last = i
		}
	}
	img := image{Env: map[string]string{}}
	for _, in := range ins[last:] {
		switch in.Cmd {
		case "FROM":
			img.Base = strings.Fields(in.Args)[0]
		case "ENTRYPOINT":
			img.Entrypoint = jsonArgs(t, in)
		case "CMD":
			img.Cmd = jsonArgs(t, in)
		case "USER":
			img.User = in.Args
		case "ENV":
			for _, kv := range strings.Fields(in.Args) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("Dockerfile:%d: ENV %q: use NAME=value", in.Line, kv)
				}
				img.Env[k] = v
			}
		case "EXPOSE":
			for _, p := range strings.Fields(in.Args) {
				n, err := strconv.Atoi(strings.TrimSuffix(p, "/tcp"))
				if err != nil {
					t.Fatalf("Dockerfile:%d: EXPOSE %q", in.Line, p)
				}
				img.Expose = append(img.Expose, n)
			}
		case "HEALTHCHECK":
			_, cmd, ok := strings.Cut(in.Args, " CMD ")
			if !ok {
				t.Fatalf("Dockerfile:%d: HEALTHCHECK without CMD", in.Line)
			}
			img.Healthcheck = jsonArgs(t, instruction{Line: in.Line, Cmd: "HEALTHCHECK CMD", Args: cmd})
		case "COPY":
			if f := strings.Fields(in.Args); strings.HasPrefix(f[0], "--from=") {
				img.BinaryPath = f[len(f)-1]
			}
		}
	}
	return img
}

// TestDockerfile: a multi-stage build of ./cmd/contentguard, static (no
// cgo), onto distroless as a numeric non-root user; the entrypoint is the
// copied binary, the default command and the HEALTHCHECK are subcommands
// it has, and the ports it exposes are the defaults of the roles.
func TestDockerfile(t *testing.T) {
	ins := readDockerfile(t, inRepo(t, "Dockerfile"))
	stages := 0
	var build string
	for _, in := range ins {
		switch in.Cmd {
		case "FROM":
			stages++
		case "RUN":
			if strings.Contains(in.Args, "go build") {
				build = in.Args
			}
		}
	}
	if stages < 2 {
		t.Fatalf("the Dockerfile has %d stage(s); want a build stage and a runtime stage", stages)
	}
	if !strings.Contains(build, "CGO_ENABLED=0") || !strings.Contains(build, "./cmd/contentguard") {
		t.Fatalf("the build must be static (CGO_ENABLED=0) and of ./cmd/contentguard: %q", build)
	}
	if _, err := os.Stat(inRepo(t, "cmd/contentguard/main.go")); err != nil {
		t.Fatal(err)
	}
	out := regexp.MustCompile(`-o (\S+)`).FindStringSubmatch(build)
	img := rootImage(t)
	if !strings.HasPrefix(img.Base, "gcr.io/distroless/static") && img.Base != "scratch" {
		t.Errorf("runtime base %s: want distroless static or scratch", img.Base)
	}
	if uid, _, _ := strings.Cut(img.User, ":"); uid == "" || uid == "0" || strings.Trim(uid, "0123456789") != "" {
		t.Errorf("USER %q: want a numeric non-root uid (Kubernetes checks runAsNonRoot without a passwd file)", img.User)
	}
	if out == nil || img.BinaryPath == "" || len(img.Entrypoint) != 1 || img.Entrypoint[0] != img.BinaryPath {
		t.Errorf("ENTRYPOINT %v must be the binary the build stage made (%v) and COPY put at %s", img.Entrypoint, out, img.BinaryPath)
	}
	cmds := commands(t)
	if len(img.Cmd) == 0 || !cmds[img.Cmd[0]] {
		t.Errorf("CMD %v: not a contentguard command", img.Cmd)
	}
	if len(img.Healthcheck) < 2 || img.Healthcheck[0] != img.BinaryPath || !cmds[img.Healthcheck[1]] {
		t.Errorf("HEALTHCHECK %v: want the binary itself running one of its commands", img.Healthcheck)
	}
	// The exposed ports are where the roles listen by default in the image.
	want := map[int]bool{}
	if p, err := strconv.Atoi(img.Env["PORT"]); err == nil {
		want[p] = true // the backend, through host.Detect
	}
	for _, f := range []flagInfo{flags(t, "sidecar")["listen"], flags(t, "sidecar")["admin"], flags(t, "backend")["metrics-listen"], flags(t, "xds")["listen"]} {
		if p := portOf(f.Default); p > 0 {
			want[p] = true
		}
	}
	for _, p := range img.Expose {
		if !want[p] {
			t.Errorf("EXPOSE %d: no role listens there by default (defaults: %v)", p, want)
		}
		delete(want, p)
	}
	if len(want) > 0 {
		t.Errorf("default ports not exposed: %v", want)
	}
	for k := range img.Env {
		if _, ok := envVars(t)[k]; !ok {
			t.Errorf("ENV %s: the binary does not read it", k)
		}
	}
	// The image's own health check, with the image's environment, passes
	// against the image's default command.
	runImageDefault(t, img)
}

// runImageDefault runs the image's CMD with its ENV (the port rewritten to
// a free one) and its HEALTHCHECK against it.
func runImageDefault(t *testing.T, img image) {
	pl := newPlace(t)
	env := map[string]string{}
	for k, v := range img.Env {
		env[k] = v
	}
	p := startContentguard(t, pl, "image", img.Cmd, env, nil)
	check := append([]string{binary(t)}, img.Healthcheck[1:]...)
	// Without a URL the check asks 127.0.0.1:$PORT: the same rewrite.
	envs := append(cleanEnv(), "PORT="+strconv.Itoa(portOf(p.ports[portOf(":"+img.Env["PORT"])])))
	waitCommand(t, "the image's HEALTHCHECK", check, envs)
}

func portOf(addr string) int {
	_, p, ok := strings.Cut(addr, ":")
	if !ok {
		return 0
	}
	if i := strings.LastIndex(addr, ":"); i >= 0 {
		p = addr[i+1:]
	}
	n, _ := strconv.Atoi(p)
	return n
}

// waitCommand runs argv until it exits 0, for 30 seconds at most.
func waitCommand(t *testing.T, what string, argv []string, env []string) {
	t.Helper()
	var last []byte
	if !until(30, func() bool {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = env
		var err error
		last, err = cmd.CombinedOutput()
		return err == nil
	}) {
		t.Fatalf("%s (%s) never passed: %s", what, strings.Join(argv, " "), last)
	}
}

var _ = filepath.Join
