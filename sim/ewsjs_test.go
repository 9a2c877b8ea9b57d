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

// TestEWSJavaScriptAPI runs Microsoft's EWS Managed API port for
// JavaScript (ews-javascript-api, installed by `npm ci` in testdata/ewsjs)
// against the simulator: app-only OAuth token, OAuthCredentials with
// ImpersonatedUserId, FindItems, SyncFolderItems, GetItem with MimeContent,
// mark read with AutoResolve, creating Inbox/Processed with CreateFolder
// and moving an item there, delete, and the incremental resync; then it
// checks the store.
func TestEWSJavaScriptAPI(t *testing.T) {
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat("testdata/ewsjs/node_modules/ews-javascript-api")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node and testdata/ewsjs/node_modules are required in CI (npm ci there): %v", err)
		}
		t.Skipf("node or ews-javascript-api missing (npm ci in sim/testdata/ewsjs): %v", err)
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
	const box = "support@contoso.test"
	b, _ := json.Marshal(s.Endpoints())
	epFile := filepath.Join(dir, "endpoints.json")
	os.WriteFile(epFile, b, 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "check.js", epFile, box)
	cmd.Dir = "testdata/ewsjs"
	cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+s.Endpoints().CAFile)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ews-javascript-api script: %v\n%s", err, out)
	}
	for _, step := range []string{"ok token", "ok find 5", "ok sync 5", "ok mime", "ok mark_read", "ok folder Processed created",
		"ok move Processed", "ok delete", "ok resync 0 created, 2 deleted, 1 read"} {
		if !strings.Contains(string(out), step) {
			t.Errorf("output lacks %q:\n%s", step, out)
		}
	}
	inbox, _ := s.Store().Messages(box, "INBOX")
	processed, err := s.Store().Messages(box, "INBOX/Processed")
	if err != nil {
		t.Fatalf("no INBOX/Processed in the store after the script: %v (folders %v)", err, s.Store().Folders(box))
	}
	top, _ := s.Store().Messages(box, "Processed")
	deleted, _ := s.Store().Messages(box, "Deleted Items")
	seen := 0
	for _, m := range inbox {
		if m.Seen() {
			seen++
		}
	}
	if len(inbox) != 3 || seen != 1 || len(processed) != 1 || len(top) != 0 || len(deleted) != 1 {
		t.Fatalf("after the script: inbox %d (%d read), Inbox/Processed %d, top-level Processed %d, Deleted Items %d; want 3 (1 read), 1, 0, 1",
			len(inbox), seen, len(processed), len(top), len(deleted))
	}
}
