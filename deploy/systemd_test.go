// Package deploy holds no code: its tests check the deployment files
// beside them (systemd units, Grafana dashboard, Prometheus rules).
package deploy

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// unit is a parsed systemd unit file: section → key → values, in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not key=value in a section: %q", path, n, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

func (u unit) get(section, key string) string {
	vs := u[section][key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// TestSystemdUnits checks the keys that matter: the command line, reload on
// SIGHUP, a state directory for the embedded store, and the hardening.
func TestSystemdUnits(t *testing.T) {
	hardening := map[string]string{
		"DynamicUser": "yes", "ProtectSystem": "strict", "NoNewPrivileges": "yes", "PrivateTmp": "yes",
		"ProtectHome": "yes", "StateDirectory": "mailpoller", "WorkingDirectory": "/var/lib/mailpoller",
		"CapabilityBoundingSet": "", "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
	}
	for name, want := range map[string]map[string]string{
		"mailpoller.service": {
			"ExecStart":  "/usr/local/bin/mailpoller run -c /etc/mailpoller/mailpoller.yaml",
			"ExecReload": "/bin/kill -HUP $MAINPID",
			"Restart":    "on-failure",
		},
		"mailpoller-once.service": {
			"ExecStart": "/usr/local/bin/mailpoller run --once -c /etc/mailpoller/mailpoller.yaml",
			"Type":      "oneshot",
		},
	} {
		u := parseUnit(t, filepath.Join("systemd", name))
		for k, v := range hardening {
			want[k] = v
		}
		for k, v := range want {
			if _, ok := u["Service"][k]; !ok {
				t.Errorf("%s: [Service] %s missing, want %q", name, k, v)
			} else if got := u.get("Service", k); got != v {
				t.Errorf("%s: [Service] %s=%q, want %q", name, k, got, v)
			}
		}
	}
	timer := parseUnit(t, filepath.Join("systemd", "mailpoller-once.timer"))
	if got := timer.get("Timer", "Unit"); got != "mailpoller-once.service" {
		t.Errorf("timer starts %q, want mailpoller-once.service", got)
	}
	if timer.get("Timer", "OnUnitInactiveSec") == "" && timer.get("Timer", "OnCalendar") == "" {
		t.Error("timer has no repeating trigger (OnUnitInactiveSec or OnCalendar)")
	}
	if got := timer.get("Install", "WantedBy"); got != "timers.target" {
		t.Errorf("timer WantedBy=%q, want timers.target", got)
	}
}

// TestSystemdAnalyze runs systemd-analyze verify (any warning fails: an
// unknown key or a bad value is only a warning to systemd) and security
// --offline with a threshold, against the units with ExecStart pointed at
// a real build of the binary. Skipped where systemd-analyze is missing.
func TestSystemdAnalyze(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed; TestSystemdUnits still checks the keys")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "mailpoller")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/mailpoller").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	names := []string{"mailpoller.service", "mailpoller-once.service", "mailpoller-once.timer"}
	var paths []string
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("systemd", n))
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte("/usr/local/bin/mailpoller"), []byte(bin))
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(analyze, append([]string{"verify", "--man=no"}, paths...)...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, stderr.String())
	}
	for _, p := range paths[:2] {
		out, err := exec.Command(analyze, "security", "--offline=yes", "--threshold=20", p).CombinedOutput()
		if err != nil {
			t.Errorf("systemd-analyze security %s: exposure over 2.0 (%v)\n%s", filepath.Base(p), err, lastLine(out))
		}
	}
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
