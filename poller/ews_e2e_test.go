package poller

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/internal/logtest"
	"github.com/mailpoller/mailpoller/internal/wait"
	"github.com/mailpoller/mailpoller/publish"
	"github.com/mailpoller/mailpoller/sim"
)

// TestEWSEndToEnd polls the primary and an additional mailbox over EWS
// (SyncFolderItems, GetItem with MIME, UpdateItem) on the simulator, with
// throttling injected, and checks the events carry the same data as the
// IMAP events of the same messages.
func TestEWSEndToEnd(t *testing.T) {
	env := newSimEnv(t)
	byItemID := map[string][]byte{}
	for _, d := range env.deliverCorpus(t) {
		byItemID[d.msg.ItemID] = d.raw
	}
	// The IMAP view of the same messages, read without touching them.
	imapNC := newNATS(t)
	runAll(t, env.config(t, "imap", "    after_read: none\n"), imapNC, debugLogger(&logtest.Buffer{}))
	imapEvents := map[string]publish.Event{} // by raw blob key (sha256 of the message)
	for _, ev := range events(t, imapNC) {
		imapEvents[ev.Data.Raw.Key] = ev
	}

	env.sim.EWSBusy(env.boxes[0], 2, 200*time.Millisecond)
	cfg := env.config(t, "ews", "")
	nc := newNATS(t)
	var logs logtest.Buffer
	runAll(t, cfg, nc, debugLogger(&logs))
	evs := events(t, nc)
	if len(evs) != len(byItemID) {
		t.Fatalf("%d EWS events, want %d", len(evs), len(byItemID))
	}
	for _, ev := range evs {
		raw, ok := byItemID[ev.Data.ServerID]
		if !ok {
			t.Fatalf("event for unknown item %s", ev.Data.ServerID)
		}
		checkEvent(t, ev, raw)
		if ev.Data.Protocol != "ews" {
			t.Errorf("protocol %q", ev.Data.Protocol)
		}
		sameAsIMAP(t, ev, imapEvents)
	}
	env.assertRead(t)
	rerunIdle(t, cfg, nc, debugLogger(&logs), len(byItemID))
	assertNoSecrets(t, logs.String(), env)
}

// sameAsIMAP fails unless ev's data equals that of the IMAP event of the
// same message (by raw blob key) but for protocol and server_id.
func sameAsIMAP(t *testing.T, ev publish.Event, imapEvents map[string]publish.Event) {
	t.Helper()
	im, ok := imapEvents[ev.Data.Raw.Key]
	if !ok {
		t.Fatalf("no IMAP event for the message of %s", ev.ID)
	}
	a, b := ev.Data, im.Data
	a.Protocol, a.ServerID, b.Protocol, b.ServerID = "", "", "", ""
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Errorf("%s and IMAP data differ for %s:\n%s\n%s", ev.Data.Protocol, ev.Data.Subject, ja, jb)
	}
}

// TestPush: with a 60 s poll interval, new mail becomes an event within
// seconds over IMAP (IDLE) and over EWS (streaming notifications).
func TestPush(t *testing.T) {
	for _, protocol := range []string{"imap", "ews"} {
		t.Run(protocol, func(t *testing.T) {
			env := newSimEnv(t)
			cfg := env.config(t, protocol, "")
			for i := range cfg.Accounts {
				d := config.Duration(60 * time.Second)
				cfg.Defaults.PollInterval = &d
				cfg.Accounts[i].PollInterval = &d
			}
			events := make(chan *publish.Event, 1)
			mon := NewMonitor()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				Run(ctx, Options{Config: cfg, NATS: newNATS(t), Monitor: mon, Logger: debugLogger(&logtest.Buffer{}),
					OnEvent: func(ev *publish.Event) { events <- ev }})
			}()
			defer func() { cancel(); <-done }()
			wait.For(t, 20*time.Second, "caught up", func() bool {
				s, ok := status(mon, env.boxes[0])
				return ok && s.State == StateCaughtUp
			})
			// Mail arriving one at a time, each as soon as the event of the
			// one before is out: no notification may fall between two
			// (the poll interval, 60 s, is longer than the deadline).
			var slowest time.Duration
			for i := 1; i <= 100; i++ {
				start := time.Now()
				env.sim.Store().Deliver(env.boxes[0], "INBOX", sim.Generate(env.boxes[0], i), start)
				select {
				case <-events:
				case <-time.After(15 * time.Second):
					t.Fatalf("no event for new mail %d within 15s", i)
				}
				slowest = max(slowest, time.Since(start))
			}
			t.Logf("%s: new mail to event in %s at most (100 messages)", protocol, slowest.Round(time.Millisecond))
			if protocol != "ews" {
				return
			}
			// Exchange expires the subscriptions (or the mailbox moves): the
			// poller subscribes again and push goes on.
			if n := env.sim.ExpireSubscriptions(); n == 0 {
				t.Fatal("no streaming subscription to expire")
			}
			for i := 101; i <= 103; i++ {
				env.sim.Store().Deliver(env.boxes[0], "INBOX", sim.Generate(env.boxes[0], i), time.Now())
				select {
				case <-events:
				case <-time.After(15 * time.Second):
					t.Fatalf("no event for new mail %d within 15s after the subscriptions expired", i)
				}
			}
			wait.For(t, 15*time.Second, "subscribed again", func() bool { return env.sim.ExpireSubscriptions() > 0 })
		})
	}
}
