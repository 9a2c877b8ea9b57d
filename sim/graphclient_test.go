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

// TestGraphClient runs Microsoft's JavaScript Graph client
// (@microsoft/microsoft-graph-client, installed by `npm ci` in
// testdata/graphclient) against the simulator: token, inbox, delta with
// paging, $value, PATCH isRead, move to a child folder of Inbox, delete,
// $batch and the incremental delta.
func TestGraphClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat("testdata/graphclient/node_modules/@microsoft/microsoft-graph-client")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node and testdata/graphclient/node_modules are required in CI (npm ci there): %v", err)
		}
		t.Skipf("node or the Graph client missing (npm ci in sim/testdata/graphclient): %v", err)
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
	if err := s.Store().CreateFolder("support@contoso.test", "Inbox/Processed"); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(s.Endpoints())
	epFile := filepath.Join(dir, "endpoints.json")
	os.WriteFile(epFile, b, 0o600)
	cmd := exec.Command(node, "check.mjs", epFile, "support@contoso.test")
	cmd.Dir = "testdata/graphclient"
	cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+s.Endpoints().CAFile)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("graph client script: %v\n%s", err, out)
	}
	for _, step := range []string{"ok token", "ok inbox 5", "ok delta 5", "ok mime", "ok mark_read", "ok move Processed", "ok delete", "ok batch", "ok resync 2 removed, 2 updated"} {
		if !strings.Contains(string(out), step) {
			t.Errorf("output lacks %q:\n%s", step, out)
		}
	}
	processed, _ := s.Store().Messages("support@contoso.test", "Inbox/Processed")
	if len(processed) != 1 {
		t.Fatalf("Inbox/Processed holds %d, want 1", len(processed))
	}
}
