package sim

import (
	"os/exec"
	"testing"
	"time"
)

// TestExchangelib runs exchangelib (Debian's python3-exchangelib, a real
// third-party EWS client) against the simulator: app-only OAuth from the
// token endpoint, impersonation, list, MIME, mark read, move, delete and
// an incremental resync.
func TestExchangelib(t *testing.T) {
	s := clientScript{name: "exchangelib", install: "apt-get install python3-exchangelib",
		available: func() error { return exec.Command("/usr/bin/python3", "-c", "import exchangelib").Run() },
		prog:      "/usr/bin/python3", dir: ".", script: "testdata/exchangelib_check.py", timeout: 60 * time.Second,
		steps: []string{"ok list 5 5", "ok mime", "ok sync 5", "ok mark_read", "ok move Processed", "ok delete", "ok resync 1 created, 2 deleted, 1 read"}}.run(t)
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
