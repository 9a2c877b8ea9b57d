package poller

import (
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/internal/logtest"
	"github.com/mailpoller/mailpoller/publish"
)

// TestGraphEndToEnd polls the primary and an additional mailbox over
// Microsoft Graph (delta, $value, mark read in $batch) on the simulator,
// with throttling injected, and checks the events carry the same data as
// the IMAP events of the same messages and that the waits Graph asked for
// were kept.
func TestGraphEndToEnd(t *testing.T) {
	env := newSimEnv(t)
	byGraphID := map[string][]byte{}
	for _, d := range env.deliverCorpus(t) {
		byGraphID[d.msg.GraphID()] = d.raw
	}
	imapNC := newNATS(t)
	runAll(t, env.config(t, "imap", "    after_read: none\n"), imapNC, debugLogger(&logtest.Buffer{}))
	imapEvents := map[string]publish.Event{}
	for _, ev := range events(t, imapNC) {
		imapEvents[ev.Data.Raw.Key] = ev
	}

	g := env.sim.Graph()
	g.Throttle(env.boxes[0], 2, time.Second)
	cfg := env.config(t, "graph", "")
	nc := newNATS(t)
	var logs logtest.Buffer
	runAll(t, cfg, nc, debugLogger(&logs))
	evs := events(t, nc)
	if len(evs) != len(byGraphID) {
		t.Fatalf("%d Graph events, want %d", len(evs), len(byGraphID))
	}
	for _, ev := range evs {
		raw, ok := byGraphID[ev.Data.ServerID]
		if !ok {
			t.Fatalf("event for unknown message %s", ev.Data.ServerID)
		}
		checkEvent(t, ev, raw)
		if ev.Data.Protocol != "graph" {
			t.Errorf("protocol %q", ev.Data.Protocol)
		}
		sameAsIMAP(t, ev, imapEvents)
	}
	env.assertRead(t)
	for _, box := range env.boxes[:2] {
		if mx := g.MaxInFlight(box); mx > 4 {
			t.Errorf("%s: %d requests in flight, Graph allows 4", box, mx)
		}
	}
	thr := g.Throttled(env.boxes[0])
	if len(thr) != 2 {
		t.Fatalf("%d throttled answers, want 2", len(thr))
	}
	for _, ev := range thr {
		if gap := ev.NextArrival.Sub(ev.Sent); gap < ev.RetryAfter {
			t.Errorf("next request %s after a 429 with Retry-After %s", gap, ev.RetryAfter)
		}
	}
	rerunIdle(t, cfg, nc, debugLogger(&logs), len(byGraphID))
	assertNoSecrets(t, logs.String(), env)
}
