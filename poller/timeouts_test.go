package poller

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/imap"
	"github.com/mailpoller/mailpoller/internal/hostile"
)

// TestTimeoutsFromConfig: an account's timeouts.read reaches its IMAP
// connections: a server that never greets is given up on after it, with
// the IMAP TimeoutError naming it, long before the 60 s default.
func TestTimeoutsFromConfig(t *testing.T) {
	env := newSimEnv(t)
	srv := hostile.Start(t, hostile.Options{Mailbox: env.boxes[0]})
	srv.Misbehave(hostile.Faults{StallGreeting: true})
	defer srv.Release()
	cfg := env.config(t, "imap", "    timeouts: {read: 1s, command: 2s}\n")
	a := &cfg.Accounts[0]
	a.Server, a.TLS.CAFile, a.TLS.InsecureSkipVerify = srv.Addr, "", true
	tr, err := NewTransports(nil).For(a)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mbs := cfg.Mailboxes()
	_, err = tr.Probe(ctx, mbs[0].Mailbox)
	var te *imap.TimeoutError
	if !errors.As(err, &te) || te.After != time.Second || te.Op != "greeting" {
		t.Fatalf("Probe against a server that never greets = %v, want the greeting's 1s read timeout", err)
	}
}

// TestStallTimeoutFromConfig: timeouts.stall sets the watchdog's bound of
// the account's mailboxes; without it the poller's default holds.
func TestStallTimeoutFromConfig(t *testing.T) {
	env := newSimEnv(t)
	for _, c := range []struct {
		extra string
		want  time.Duration
	}{{"", 10 * time.Minute}, {"    timeouts: {stall: 7m}\n", 7 * time.Minute}} {
		cfg := env.config(t, "imap", c.extra)
		for _, mb := range cfg.Mailboxes() {
			if got := stallTimeout(mb, 10*time.Minute); got != c.want {
				t.Errorf("%q: %s stall %s, want %s", c.extra, mb.Address, got, c.want)
			}
		}
	}
}
