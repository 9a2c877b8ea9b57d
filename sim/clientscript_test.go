package sim

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clientScript is a third-party client's script run against the
// simulator: prog runs script in dir with the endpoints file and a mailbox
// as arguments, trusting the simulator's CA, and prints "ok <step>" lines.
type clientScript struct {
	name      string        // for messages, e.g. "exchangelib"
	available func() error  // nil when the client is installed
	install   string        // how to install it
	prog      string        // program, looked up on PATH unless absolute
	dir       string        // working directory
	script    string        // relative to dir
	prepare   func(s *Sim)  // adjusts the fresh simulator, or nil
	steps     []string      // lines the output must contain
	mailbox   string        // default support@contoso.test
	timeout   time.Duration // default 25s
}

// run starts a simulator from testdata/seed.yaml, runs the script and
// checks its steps; it returns the simulator for checks of the store. A
// missing client skips the test, or fails it when CI=true.
func (c clientScript) run(t *testing.T) *Sim {
	t.Helper()
	if err := c.available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI (%s): %v", c.name, c.install, err)
		}
		t.Skipf("%s not installed (%s): %v", c.name, c.install, err)
	}
	seed, err := LoadSeed("testdata/seed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s, err := Start(context.Background(), seed, &Options{CADir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if c.prepare != nil {
		c.prepare(s)
	}
	b, _ := json.Marshal(s.Endpoints())
	epFile := filepath.Join(dir, "endpoints.json")
	os.WriteFile(epFile, b, 0o600)
	mailbox, timeout := c.mailbox, c.timeout
	if mailbox == "" {
		mailbox = "support@contoso.test"
	}
	if timeout == 0 {
		timeout = 25 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.prog, c.script, epFile, mailbox)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+s.Endpoints().CAFile)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s script: %v\n%s", c.name, err, out)
	}
	for _, step := range c.steps {
		if !strings.Contains(string(out), step) {
			t.Errorf("%s output lacks %q:\n%s", c.name, step, out)
		}
	}
	return s
}

// nodePackage is clientScript.available for an npm package installed in
// testdata/<dir>/node_modules.
func nodePackage(dir, pkg string) func() error {
	return func() error {
		if _, err := exec.LookPath("node"); err != nil {
			return err
		}
		_, err := os.Stat(filepath.Join("testdata", dir, "node_modules", pkg))
		return err
	}
}
