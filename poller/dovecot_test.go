package poller

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	goimap "github.com/emersion/go-imap/v2"

	"github.com/mailpoller/mailpoller/config"
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

// TestDovecotPasswordEndToEnd polls two mailboxes of a real Dovecot with a
// password account: a master user over STARTTLS, the second mailbox named
// as PLAIN's authorization identity, handled mail moved to the folder
// path Inbox/Processed (INBOX.Processed: Dovecot's delimiter is a dot).
// The password appears in no log line.
func TestDovecotPasswordEndToEnd(t *testing.T) {
	boxes := []string{"support@example.test", "billing@example.test"}
	srv := dovecottest.Start(t, dovecottest.Options{Users: boxes, MasterUser: "poller",
		Introspect: func(string) (string, bool) { return "", false }})
	mail := corpus(t)
	names := slices.Sorted(maps.Keys(mail))
	for i, n := range names {
		srv.Append(t, boxes[i%2], "INBOX", mail[n])
	}
	for _, box := range boxes {
		srv.Create(t, box, "INBOX.Processed")
	}
	pass := dovecottest.Password("poller")
	t.Setenv("TEST_IMAP_PASSWORD", pass)
	y := fmt.Sprintf(`nats: {url: "nats://127.0.0.1:1"}
http: {listen: ""}
defaults: {poll_interval: 1s, start_from: all, after_read: move, move_to: Inbox/Processed}
accounts:
  - name: dovecot
    protocol: imap
    auth: password
    username: poller
    password: ${TEST_IMAP_PASSWORD}
    starttls: true
    server: %s
    tls: {ca_file: %s}
    mailbox: %s
    additional_users: [%s]
`, srv.PlainAddr, srv.CAFile, boxes[0], boxes[1])
	cfg, err := config.Parse([]byte(y), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	nc := newNATS(t)
	var logs logtest.Buffer
	for _, r := range runOnce(t, cfg, nc, debugLogger(&logs)) {
		if r.Err != nil {
			t.Fatalf("%s: %v\n%s", r.Mailbox.Address, r.Err, srv.Log())
		}
	}
	evs := events(t, nc)
	if len(evs) != len(names) {
		t.Fatalf("%d events, want %d", len(evs), len(names))
	}
	perBox := map[string]int{}
	for _, ev := range evs {
		perBox[ev.Data.Mailbox]++
	}
	if perBox[boxes[0]] != (len(names)+1)/2 || perBox[boxes[1]] != len(names)/2 {
		t.Errorf("events per mailbox %v: each mailbox must be read as itself", perBox)
	}
	for _, box := range boxes {
		if left, moved := len(srv.Flags(t, box, "INBOX")), len(srv.Flags(t, box, "INBOX.Processed")); left != 0 || moved != perBox[box] {
			t.Errorf("%s: %d left in INBOX, %d in INBOX.Processed; want 0, %d", box, left, moved, perBox[box])
		}
	}
	if strings.Contains(logs.String(), pass) {
		t.Fatal("the IMAP password appears in the logs")
	}
	if !strings.Contains(logs.String(), "level=DEBUG") {
		t.Fatal("no debug lines were logged: the check proves nothing")
	}
}
