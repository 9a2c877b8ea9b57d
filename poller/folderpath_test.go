package poller

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/ews"
	"github.com/mailpoller/mailpoller/internal/logtest"
	"github.com/mailpoller/mailpoller/sim"
)

// TestMoveToFolderPath: move_to: Inbox/Processed moves handled mail into
// the Processed folder under Inbox on every transport, though a top-level
// folder is named Processed too; and folder: Inbox/Support/Incoming polls
// a folder two levels down.
func TestMoveToFolderPath(t *testing.T) {
	for _, protocol := range []string{"imap", "ews", "graph"} {
		t.Run(protocol, func(t *testing.T) {
			env := newSimEnv(t)
			box := env.boxes[0]
			st := env.sim.Store()
			for _, f := range []string{"Inbox/Processed", "Inbox/Support", "Inbox/Support/Incoming"} {
				if err := st.CreateFolder(box, f); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 3 {
				if _, err := st.Deliver(box, "Inbox/Support/Incoming", sim.Generate(box, i+1), time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			cfg := env.config(t, protocol, "    folder: Inbox/Support/Incoming\n    after_read: move\n    move_to: Inbox/Processed\n")
			cfg.Accounts[0].AdditionalUsers = nil
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			nc := newNATS(t)
			for _, r := range Run(ctx, Options{Config: cfg, NATS: nc, Logger: debugLogger(&logtest.Buffer{}), Once: true}) {
				if r.Err != nil {
					t.Fatalf("%s %s: %v", r.Mailbox.Address, r.Mailbox.Folder, r.Err)
				}
			}
			if n := len(events(t, nc)); n != 3 {
				t.Fatalf("%d events, want 3", n)
			}
			count := func(f string) int { m, _ := st.Messages(box, f); return len(m) }
			if src, in, top := count("Inbox/Support/Incoming"), count("Inbox/Processed"), count("Processed"); src != 0 || in != 3 || top != 0 {
				t.Errorf("Incoming %d, Inbox/Processed %d, top-level Processed %d; want 0, 3, 0", src, in, top)
			}
		})
	}
}

// TestEWSEnsureFolder: the EWS quarantine folder is made when missing,
// each missing level under its parent, and found (not made twice) after.
func TestEWSEnsureFolder(t *testing.T) {
	env := newSimEnv(t)
	box := env.boxes[0]
	cfg := env.config(t, "ews", "")
	tr, err := NewTransports(nil).For(&cfg.Accounts[0])
	if err != nil {
		t.Fatal(err)
	}
	c := tr.(*ews.Transport).Client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, path := range []string{"Inbox/Quarantine/Poison", "Unreadable"} {
		first, err := c.EnsureFolder(ctx, box, path)
		if err != nil {
			t.Fatalf("EnsureFolder(%s): %v", path, err)
		}
		again, err := c.EnsureFolder(ctx, box, path)
		if err != nil || again.ID != first.ID {
			t.Errorf("EnsureFolder(%s) again = %v, %v; want the same folder %v", path, again, err, first)
		}
	}
	folders := env.sim.Store().Folders(box)
	for _, want := range []string{"INBOX/Quarantine", "INBOX/Quarantine/Poison", "Unreadable"} {
		if !slices.ContainsFunc(folders, func(f string) bool { return strings.EqualFold(f, want) }) {
			t.Errorf("the mailbox's folders %v lack %s", folders, want)
		}
	}
}
