package poller

import (
	"context"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/internal/logtest"
	"github.com/mailpoller/mailpoller/sim"
)

// TestSeveralFolders: folders: [INBOX, Processed] polls both folders of
// each mailbox on its own, over every transport; each event names its
// folder, and a message in each folder is published once.
func TestSeveralFolders(t *testing.T) {
	for _, protocol := range []string{"imap", "ews", "graph"} {
		t.Run(protocol, func(t *testing.T) {
			env := newSimEnv(t)
			box := env.boxes[0]
			want := map[string]int{"INBOX": 3, "Processed": 2}
			n := 0
			for folder, k := range want {
				for range k {
					n++
					if _, err := env.sim.Store().Deliver(box, folder, sim.Generate(box, n), time.Now()); err != nil {
						t.Fatal(err)
					}
				}
			}
			cfg := env.config(t, protocol, "    folders: [INBOX, Processed]\n")
			if got := len(cfg.Mailboxes()); got != 4 {
				t.Fatalf("%d mailbox loops, want 4 (2 mailboxes x 2 folders)", got)
			}
			nc := newNATS(t)
			mon := NewMonitor()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for _, r := range Run(ctx, Options{Config: cfg, NATS: nc, Logger: debugLogger(&logtest.Buffer{}), Once: true, Monitor: mon}) {
				if r.Err != nil {
					t.Fatalf("%s %s: %v", r.Mailbox.Address, r.Mailbox.Folder, r.Err)
				}
			}
			// One series per folder for the gauges: /metrics must not collide.
			if _, err := mon.reg.Gather(); err != nil {
				t.Errorf("metrics with two folders per mailbox: %v", err)
			}
			got := map[string]int{}
			ids := map[string]bool{}
			for _, ev := range events(t, nc) {
				if ev.Data.Mailbox != box {
					t.Errorf("event for %s", ev.Data.Mailbox)
				}
				got[ev.Data.Folder]++
				ids[ev.ID] = true
			}
			if got["INBOX"] != 3 || got["Processed"] != 2 || len(ids) != 5 {
				t.Errorf("events per folder %v (%d distinct ids), want INBOX 3, Processed 2", got, len(ids))
			}
		})
	}
}
