package sim

import (
	"testing"
)

// TestGraphClient runs Microsoft's JavaScript Graph client
// (@microsoft/microsoft-graph-client, installed by `npm ci` in
// testdata/graphclient) against the simulator: token, inbox, delta with
// paging, $value, PATCH isRead, move to a child folder of Inbox, delete,
// $batch and the incremental delta.
func TestGraphClient(t *testing.T) {
	s := clientScript{name: "the Graph client", available: nodePackage("graphclient", "@microsoft/microsoft-graph-client"),
		install: "npm ci in sim/testdata/graphclient", prog: "node", dir: "testdata/graphclient", script: "check.mjs",
		prepare: func(s *Sim) {
			if err := s.Store().CreateFolder("support@contoso.test", "Inbox/Processed"); err != nil {
				t.Fatal(err)
			}
		},
		steps: []string{"ok token", "ok inbox 5", "ok delta 5", "ok mime", "ok mark_read", "ok move Processed", "ok delete", "ok batch", "ok resync 2 removed, 2 updated"}}.run(t)
	processed, _ := s.Store().Messages("support@contoso.test", "Inbox/Processed")
	if len(processed) != 1 {
		t.Fatalf("Inbox/Processed holds %d, want 1", len(processed))
	}
}
