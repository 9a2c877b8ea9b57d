package poller

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/internal/logtest"
	"github.com/mailpoller/mailpoller/internal/wait"
	"github.com/mailpoller/mailpoller/sim"
)

// TestGraphPush runs the poller with graph.notifications_url pointing at
// its own operations endpoint and a poll interval of an hour: both
// mailboxes subscribe (the simulator runs Graph's validation handshake
// against /graph/notifications), a message delivered afterwards is
// published at once, which only the notification can cause, and shutting
// down deletes the subscriptions.
func TestGraphPush(t *testing.T) {
	env := newSimEnv(t)
	var mon atomic.Pointer[Monitor]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := mon.Load()
		if m == nil {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		m.Handler().ServeHTTP(w, r)
	}))
	defer srv.Close()
	cfg := env.config(t, "graph", "    poll_interval: 1h\n")
	cfg.Graph.NotificationsURL = srv.URL + "/graph/notifications"
	var logs logtest.Buffer
	m, stop := runWithLog(t, cfg, nil, &logs)
	mon.Store(m)
	g := env.sim.Graph()
	for _, box := range env.boxes[:2] {
		wait.For(t, 30*time.Second, box+" subscribed", func() bool { return len(g.Subscriptions(box)) == 1 })
	}
	if _, err := env.sim.Store().Deliver(env.boxes[0], "INBOX", sim.Generate(env.boxes[0], 1), time.Now()); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 30*time.Second, "the new message published, an hour before the next poll", func() bool {
		s, _ := status(m, env.boxes[0])
		return s.Published == 1
	})
	if s, _ := status(m, env.boxes[1]); s.Published != 0 {
		t.Errorf("%s published %d, want 0", env.boxes[1], s.Published)
	}
	stop()
	for _, box := range env.boxes[:2] {
		if subs := g.Subscriptions(box); len(subs) != 0 {
			t.Errorf("%s: %d subscriptions left after shutdown", box, len(subs))
		}
	}
	assertNoSecrets(t, logs.String(), env)
}
