package sim

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExchangelib runs exchangelib (Debian's python3-exchangelib, a real
// third-party EWS client) against the simulator: app-only OAuth from the
// token endpoint, impersonation, list, MIME, mark read, move, delete and
// an incremental resync.
func TestExchangelib(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import exchangelib").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("exchangelib is required in CI (apt-get install python3-exchangelib): %v", err)
		}
		t.Skipf("exchangelib not installed (apt-get install python3-exchangelib): %v", err)
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
	defer s.Close()
	b, _ := json.Marshal(s.Endpoints())
	epFile := filepath.Join(dir, "endpoints.json")
	os.WriteFile(epFile, b, 0o600)
	out, err := exec.Command("/usr/bin/python3", "testdata/exchangelib_check.py", epFile, "support@contoso.test").CombinedOutput()
	if err != nil {
		t.Fatalf("exchangelib script: %v\n%s", err, out)
	}
	for _, step := range []string{"ok list 5 5", "ok mime", "ok sync 5", "ok mark_read", "ok move Processed", "ok delete", "ok resync 1 created, 2 deleted, 1 read"} {
		if !strings.Contains(string(out), step) {
			t.Errorf("output lacks %q:\n%s", step, out)
		}
	}
	inbox, _ := s.Store().Messages("support@contoso.test", "INBOX")
	processed, _ := s.Store().Messages("support@contoso.test", "Processed")
	seen := 0
	for _, m := range inbox {
		if m.Seen() {
			seen++
		}
	}
	if len(inbox) != 4 || len(processed) != 1 || seen != 1 {
		t.Fatalf("after the script: inbox %d (%d read), Processed %d; want 4 (1 read), 1", len(inbox), seen, len(processed))
	}
}
