package poller

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/ews"
	"github.com/mailpoller/mailpoller/imap"
	"github.com/mailpoller/mailpoller/internal/logtest"
	"github.com/mailpoller/mailpoller/internal/relay"
	"github.com/mailpoller/mailpoller/internal/wait"
	"github.com/mailpoller/mailpoller/sim"
)

// A server's suggested wait is clamped: 0 does not make a tight loop and
// an absurd or negative one does not wait for ever (or not at all).
func TestBackoffClampsServerWaits(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		lo   time.Duration
		hi   time.Duration
	}{
		{"imap throttle 0 ms", &imap.ThrottledError{Backoff: 0}, backoffMin, backoffMin},
		{"imap throttle negative", &imap.ThrottledError{Backoff: -time.Hour}, backoffMin, backoffMin},
		{"imap throttle 285 years", &imap.ThrottledError{Backoff: 1 << 62}, permanentBackoff, permanentBackoff},
		{"ews busy 0 ms", &ews.ResponseError{Code: "ErrorServerBusy", BackOff: 0}, backoffMin / 2, backoffMin},
		{"imap throttle 3 s honoured", &imap.ThrottledError{Backoff: 3 * time.Second}, 3 * time.Second, 3 * time.Second},
	} {
		for attempt := 1; attempt <= 3; attempt++ {
			d := backoff(attempt, tc.err)
			lo := tc.lo
			if attempt > 1 && tc.lo < backoffMin<<(attempt-1)/2 {
				lo = tc.lo // the exponential part may be larger, never smaller
			}
			if d < lo || d > max(tc.hi, backoffMin<<(attempt-1)) {
				t.Errorf("%s, attempt %d: backoff %v, want in [%v, %v]", tc.name, attempt, d, lo, max(tc.hi, backoffMin<<(attempt-1)))
			}
		}
	}
}

var retryInRE = regexp.MustCompile(`retry_in=(\S+)`)

// A server that accepts every login and then fails the poll must not be
// retried at the first backoff step for ever: the failures count up until
// a poll goes through.
func TestBackoffGrowsAcrossGoodLogins(t *testing.T) {
	old := backoffMin
	backoffMin = 4 * time.Millisecond
	t.Cleanup(func() { backoffMin = old })

	env := newSimEnv(t)
	box := env.boxes[0]
	env.sim.Store().Deliver(box, "INBOX", sim.Generate(box, 1), time.Now())
	env.sim.DropFetch(box, 8)
	cfg := env.config(t, "imap", "")
	nc := newNATS(t)
	var logs logtest.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, Options{Config: cfg, NATS: nc, Logger: debugLogger(&logs)})
	}()
	defer func() { cancel(); <-done }()
	wait.For(t, 30*time.Second, "the message is published after the dropped fetches", func() bool {
		return len(events(t, nc)) == 1
	})
	var waits []time.Duration
	for _, line := range strings.Split(logs.String(), "\n") {
		if !strings.Contains(line, "mailbox="+box) || !strings.Contains(line, "backing off") {
			continue
		}
		if m := retryInRE.FindStringSubmatch(line); m != nil {
			d, err := time.ParseDuration(m[1])
			if err != nil {
				t.Fatalf("retry_in %q: %v", m[1], err)
			}
			waits = append(waits, d)
		}
	}
	n := len(waits)
	if n < 3 {
		t.Fatalf("saw %d backoffs for the dropped fetches, want 3 or more:\n%s", n, logs.String())
	}
	// attempt n waits at least half of backoffMin << (n-1).
	if last, floor := waits[n-1], backoffMin<<(n-1)/2; last < floor {
		t.Errorf("backoff after %d failed polls (each after a good login) is %v, want >= %v; all: %v", n, last, floor, waits)
	}
}

// A server that stops answering in the middle of a session makes the
// mailbox stalled in /status and /readyz; its connection is closed, and
// once the server answers again the mailbox reconnects and publishes the
// mail that arrived meanwhile.
func TestStalledServerIsNotReadyAndRecovers(t *testing.T) {
	env := newSimEnv(t)
	box := env.boxes[0]
	env.sim.Store().Deliver(box, "INBOX", sim.Generate(box, 1), time.Now())
	r, err := relay.Start(env.ep.IMAP)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	env.ep.IMAP = r.Addr()
	cfg := env.config(t, "imap", "")
	nc := newNATS(t)
	mon := NewMonitor()
	var logs logtest.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, Options{Config: cfg, NATS: nc, Monitor: mon, Logger: debugLogger(&logs), StallTimeout: 500 * time.Millisecond})
	}()
	defer func() { cancel(); <-done }()

	wait.For(t, 20*time.Second, "the first message is published and every mailbox is ready", func() bool {
		return len(events(t, nc)) == 1 && mon.readiness() == nil
	})
	r.Hold()
	env.sim.Store().Deliver(box, "INBOX", sim.Generate(box, 2), time.Now())
	wait.For(t, 20*time.Second, "/status shows the mailbox stalled", func() bool {
		st, _ := status(mon, box)
		return st.Stalled && strings.Contains(st.LastError, "no progress")
	})
	if err := mon.readiness(); err == nil || !strings.Contains(err.Error(), "stalled") {
		t.Errorf("/readyz while a mailbox is stalled: %v, want not ready", err)
	}
	r.Release()
	wait.For(t, 30*time.Second, "the mail that arrived during the stall is published and the mailbox is ready again", func() bool {
		return len(events(t, nc)) == 2 && mon.readiness() == nil
	})
	if st, _ := status(mon, box); st.Stalled {
		t.Errorf("%s still shown as stalled after it caught up: %+v", box, st)
	}
	assertNoSecrets(t, logs.String(), env)
}
