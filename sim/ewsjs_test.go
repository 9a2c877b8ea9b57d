package sim

import (
	"testing"
)

// TestEWSJavaScriptAPI runs Microsoft's EWS Managed API port for
// JavaScript (ews-javascript-api, installed by `npm ci` in testdata/ewsjs)
// against the simulator: app-only OAuth token, OAuthCredentials with
// ImpersonatedUserId, FindItems, SyncFolderItems, GetItem with MimeContent,
// mark read with AutoResolve, creating Inbox/Processed with CreateFolder
// and moving an item there, delete, and the incremental resync; then it
// checks the store.
func TestEWSJavaScriptAPI(t *testing.T) {
	const box = "support@contoso.test"
	s := clientScript{name: "ews-javascript-api", available: nodePackage("ewsjs", "ews-javascript-api"),
		install: "npm ci in sim/testdata/ewsjs", prog: "node", dir: "testdata/ewsjs", script: "check.js",
		steps: []string{"ok token", "ok find 5", "ok sync 5", "ok mime", "ok mark_read", "ok folder Processed created",
			"ok move Processed", "ok delete", "ok resync 0 created, 2 deleted, 1 read"}}.run(t)
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
