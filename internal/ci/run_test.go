package ci

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sandbox runs a copy of .ci/run with PATH holding only recording stubs
// (apt-get, systemctl, service, go, make) and the few real tools the script
// uses, so that every package looks missing. It returns the calls the stubs
// saw, one per line.
func sandbox(t *testing.T, policyRCD string) string {
	t.Helper()
	script, err := os.ReadFile(filepath.Join("..", "..", ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, ".ci"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, ".ci", "run"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	calls := filepath.Join(root, "calls")
	// apt-get also records what policy-rc.d answers while it installs: a
	// service start is allowed only if the script exits 0.
	stub := `#!/bin/sh
echo "$(basename "$0") $*" >>` + calls + `
if [ "$(basename "$0")" = apt-get ] && [ "$1" = install ]; then
  if [ -x "$CI_POLICY_RC_D" ]; then "$CI_POLICY_RC_D" redis-server start; echo "policy-rc.d $?" >>` + calls + `
  else echo "policy-rc.d missing" >>` + calls + `; fi
fi
exit 0
`
	for _, name := range []string{"apt-get", "systemctl", "service", "go", "make"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"dirname", "basename", "chmod", "rm", "cat"} {
		real, err := exec.LookPath(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(real, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("/bin/bash", filepath.Join(root, ".ci", "run"))
	cmd.Env = []string{"PATH=" + bin, "CI_POLICY_RC_D=" + policyRCD, "HOME=" + root}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf(".ci/run: %v\n%s", err, out)
	}
	log, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	return string(log)
}

// TestCIRunInstallsWithoutStartingServices: on a machine that lacks the
// tools, .ci/run installs them with service start-up forbidden for the
// install only, never stops a service, and runs make test.
func TestCIRunInstallsWithoutStartingServices(t *testing.T) {
	policy := filepath.Join(t.TempDir(), "policy-rc.d")
	log := sandbox(t, policy)
	for _, want := range []string{"apt-get install", "redis-server", "prometheus", "policy-rc.d 101", "make test"} {
		if !strings.Contains(log, want) {
			t.Errorf("no %q in the calls:\n%s", want, log)
		}
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.HasPrefix(line, "systemctl") || strings.HasPrefix(line, "service") {
			t.Errorf(".ci/run touched a service: %q", line)
		}
	}
	if _, err := os.Stat(policy); !os.IsNotExist(err) {
		t.Errorf("the policy-rc.d .ci/run wrote is still there: %v", err)
	}
}

// TestCIRunKeepsAnExistingPolicyRCD: a machine's own policy-rc.d is used as
// it is and left in place.
func TestCIRunKeepsAnExistingPolicyRCD(t *testing.T) {
	policy := filepath.Join(t.TempDir(), "policy-rc.d")
	own := "#!/bin/sh\n# the machine's own\nexit 101\n"
	if err := os.WriteFile(policy, []byte(own), 0o755); err != nil {
		t.Fatal(err)
	}
	log := sandbox(t, policy)
	if !strings.Contains(log, "policy-rc.d 101") {
		t.Errorf("the machine's policy-rc.d was not in force during the install:\n%s", log)
	}
	if b, err := os.ReadFile(policy); err != nil || string(b) != own {
		t.Errorf("the machine's policy-rc.d changed: %q %v", b, err)
	}
}
