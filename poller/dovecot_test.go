package poller

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	goimap "github.com/emersion/go-imap/v2"

	"github.com/mailpoller/mailpoller/internal/dovecottest"
	"github.com/mailpoller/mailpoller/internal/logtest"
)

// TestDovecotEndToEnd polls a primary and an additional mailbox on a real
// Dovecot, with app-only tokens from the simulator's token endpoint that
// Dovecot checks through its oauth2 passdb.
func TestDovecotEndToEnd(t *testing.T) {
	env := newSimEnv(t)
	srv := dovecottest.Start(t, dovecottest.Options{
		Users: env.boxes,
		Introspect: func(tok string) (string, bool) {
			c, err := env.sim.Verify(tok)
			if err != nil || !slices.Contains(c.Roles, "IMAP.AccessAsApp") {
				return "", false
			}
			return "app@contoso.test", true // any address of the tenant's domain
		},
	})
	mail := corpus(t)
	names := slices.Sorted(maps.Keys(mail))
	byServerID := map[string][]byte{}
	for i, n := range names {
		box := env.boxes[i%2]
		uid := srv.Append(t, box, "INBOX", mail[n])
		byServerID[fmt.Sprintf("%s/%d:%d", box, srv.UIDValidity(t, box, "INBOX"), uid)] = mail[n]
	}
	env.ep.IMAP = srv.Addr
	env.ep.CAFile = srv.CAFile
	cfg := env.config(t, "imap", "")
	// The token endpoint is the simulator's: trust both CAs.
	cfg.Accounts[0].TLS.CAFile = writeBundle(t, srv.CAFile, env.sim.CAPEM())
	nc := newNATS(t)
	var logs logtest.Buffer
	res := runOnce(t, cfg, nc, debugLogger(&logs))
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("%s: %v\n%s", r.Mailbox.Address, r.Err, srv.Log())
		}
	}
	evs := events(t, nc)
	if len(evs) != len(names) {
		t.Fatalf("%d events, want %d", len(evs), len(names))
	}
	for _, ev := range evs {
		raw, ok := byServerID[ev.Data.Mailbox+"/"+ev.Data.ServerID]
		if !ok {
			t.Fatalf("event for unknown message %s %s", ev.Data.Mailbox, ev.Data.ServerID)
		}
		checkEvent(t, ev, raw)
	}
	for _, box := range env.boxes[:2] {
		for uid, flags := range srv.Flags(t, box, "INBOX") {
			if !slices.Contains(flags, goimap.FlagSeen) {
				t.Errorf("%s UID %d has flags %v after its event was published, want \\Seen", box, uid, flags)
			}
		}
	}
	rerunIdle(t, cfg, nc, debugLogger(&logs), len(names))
	assertNoSecrets(t, logs.String(), env)
}
