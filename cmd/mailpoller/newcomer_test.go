package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/mailpoller/mailpoller/configs"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// installedBinary builds mailpoller once and copies it into an empty
// directory, as `go install` would leave it: away from the checkout.
func installedBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mailpoller-bin-")
		if err != nil {
			binErr = err
			return
		}
		built := filepath.Join(dir, "build", "mailpoller")
		out, err := exec.Command("go", "build", "-buildvcs=auto", "-o", built, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		data, err := os.ReadFile(built)
		if err != nil {
			binErr = err
			return
		}
		os.RemoveAll(filepath.Dir(built))
		binPath = filepath.Join(dir, "mailpoller")
		binErr = os.WriteFile(binPath, data, 0o755)
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// TestDemoFromInstalledBinary runs `mailpoller demo --for 5s --json` in
// an empty directory: it must need no file from the checkout, and its
// stdout must be only events, one JSON object a line, each valid against
// configs/event.schema.json.
func TestDemoFromInstalledBinary(t *testing.T) {
	bin := installedBinary(t)
	sch, err := jsonschema.NewCompiler().Compile("../../configs/event.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "demo", "--for", "5s", "--json")
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("demo: %v\nstderr:\n%s", err, stderr.String())
	}
	events := 0
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(line, &ev); err != nil || ev.Type != "mail.received" {
			t.Fatalf("stdout line %d is not an event: %q", events+1, line)
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(line))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(v); err != nil {
			t.Errorf("event %d does not match the schema: %v", events+1, err)
		}
		events++
	}
	if events == 0 {
		t.Fatalf("no events on stdout in 5s\nstderr:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "simulator: token endpoint") {
		t.Errorf("banner missing from stderr:\n%s", stderr.String())
	}
	t.Logf("%d events in 5s", events)
}

// TestHelpExitsZero runs `<command> --help` and `-h` for every command of
// the installed binary: each exits 0 and lists its flags on stdout.
func TestHelpExitsZero(t *testing.T) {
	bin := installedBinary(t)
	wantFlag := map[string]string{"run": "-once", "demo": "-json", "check": "-c", "sim": "-imap-listen", "tail": "-url", "version": "Usage of version"}
	for _, c := range commands() {
		for _, h := range []string{"--help", "-h"} {
			cmd := exec.Command(bin, c.name, h)
			cmd.Dir = t.TempDir()
			out, err := cmd.Output()
			if err != nil {
				t.Errorf("%s %s: %v (want exit 0)", c.name, h, err)
				continue
			}
			want, ok := wantFlag[c.name]
			if !ok {
				t.Errorf("no expected flag listed for command %s", c.name)
			}
			if !strings.Contains(string(out), want) {
				t.Errorf("%s %s printed %q, want it to list %s", c.name, h, out, want)
			}
		}
	}
	out, err := exec.Command(bin, "--help").Output()
	if err != nil || !strings.Contains(string(out), "commands:") {
		t.Errorf("mailpoller --help: %v, %q", err, out)
	}
}

// TestVersionFromBuildInfo checks version prints the module version and
// the VCS revision the binary was built from.
func TestVersionFromBuildInfo(t *testing.T) {
	out, err := exec.Command(installedBinary(t), "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := `^mailpoller \S+ revision=[0-9a-f]{40} `
	if _, err := exec.LookPath("git"); err != nil {
		want = `^mailpoller \S+ revision=unknown ` // built without VCS info
	}
	if !regexp.MustCompile(want).Match(out) {
		t.Errorf("version printed %q, want the module version and a revision", out)
	}
}

// TestRunJSONStderr runs `run --once` with log.format json where one
// mailbox fails: every line on stderr, the FAILED summary included, is a
// JSON record.
func TestRunJSONStderr(t *testing.T) {
	s := startCheckSim(t)
	ep := s.Endpoints()
	cfg := fmt.Sprintf(`nats: {embedded: {listen: "127.0.0.1:0", store_dir: %q}}
log: {format: json}
accounts:
  - name: support
    tenant_id: %s
    client_id: %s
    client_secret: good-secret-value
    authority: %s
    server: %s
    tls: {ca_file: %s}
    mailbox: support@contoso.test
    additional_users: [billing@contoso.test]
`, t.TempDir(), ckTenant, ckNoGrant, ep.Authority, ep.IMAP, ep.CAFile)
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := dispatch([]string{"run", "-c", path, "--once"}, &stdout, &stderr); code != 1 {
		t.Fatalf("run --once = %d, want 1 (billing@ has no permission)\n%s", code, stderr.String())
	}
	failed := false
	for i, line := range strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("stderr line %d is not JSON: %q", i+1, line)
			continue
		}
		if rec["msg"] == "FAILED" && rec["mailbox"] == "billing@contoso.test" && rec["account"] == "support" {
			failed = true
		}
	}
	if !failed {
		t.Errorf("no FAILED record for billing@ on stderr:\n%s", stderr.String())
	}
	if strings.Contains(stderr.String(), "good-secret-value") {
		t.Error("the client secret is on stderr")
	}
}

// TestRunConfigErrorsJSON checks that a refused config that asks for
// log.format json is reported as JSON records, one per problem, with
// file, line, key and fix.
func TestRunConfigErrorsJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("log: {format: json}\npoll_intervall: 5s\naccounts: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := dispatch([]string{"run", "-c", path, "--once"}, &stdout, &stderr); code != 2 {
		t.Fatalf("run = %d, want 2\n%s", code, stderr.String())
	}
	found := false
	for i, line := range strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("stderr line %d is not JSON: %q", i+1, line)
			continue
		}
		if rec["key"] == "poll_intervall" && rec["line"] == 2.0 && rec["file"] == path {
			found = true
		}
	}
	if !found {
		t.Errorf("no record for poll_intervall at line 2:\n%s", stderr.String())
	}
}

// TestDemoJSONLog runs the demo with its whole log (-v) in log.format
// json: stdout is only events and every stderr line, banner included, is
// a JSON record.
func TestDemoJSONLog(t *testing.T) {
	cfg := strings.Replace(string(configs.Demo), "format: text", "format: json", 1)
	if cfg == string(configs.Demo) {
		t.Fatal("configs/demo.yaml has no \"format: text\" to replace")
	}
	path := filepath.Join(t.TempDir(), "demo.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := dispatch([]string{"demo", "--for", "3s", "--json", "-v", "-c", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("demo = %d\n%s", code, stderr.String())
	}
	for name, out := range map[string]string{"stdout": stdout.String(), "stderr": stderr.String()} {
		for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if line == "" && out == "" {
				continue // no event yet: the installed-binary test requires some
			}
			if !json.Valid([]byte(line)) {
				t.Errorf("%s line %d is not JSON: %q", name, i+1, line)
			}
		}
	}
	if !strings.Contains(stderr.String(), `"msg":"simulator started"`) {
		t.Errorf("no banner record on stderr:\n%s", stderr.String())
	}
}
