package poller

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/internal/logtest"
	"github.com/mailpoller/mailpoller/sim"
	"github.com/mailpoller/mailpoller/sim/simtest"
)

// TestManyMailboxesOneToken: 200 mailboxes of one app share one token
// request, each gets its own connection, and all publish.
func TestManyMailboxesOneToken(t *testing.T) {
	const n = 200
	seed := &sim.Seed{
		Tenants: []sim.Tenant{{ID: testTenant, Domain: "contoso.test"}},
		Apps:    []sim.App{{Tenant: testTenant, ClientID: testClient, Secret: testSecret, Roles: []string{"IMAP.AccessAsApp"}, Mailboxes: []string{"*"}}},
	}
	var users []string
	for i := 0; i < n; i++ {
		addr := fmt.Sprintf("user%03d@contoso.test", i)
		seed.Mailboxes = append(seed.Mailboxes, sim.MailboxSeed{Address: addr, Generate: 1})
		if i > 0 {
			users = append(users, addr)
		}
	}
	s := simtest.Start(t, seed)
	ep := s.Endpoints()
	t.Setenv("TEST_CLIENT_SECRET", testSecret)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`nats: {url: "nats://127.0.0.1:1"}
defaults: {start_from: all}
accounts:
  - name: big
    tenant_id: %s
    client_id: %s
    client_secret: ${TEST_CLIENT_SECRET}
    authority: %s
    server: %s
    tls: {ca_file: %s}
    mailbox: user000@contoso.test
    additional_users: [%s]
`, testTenant, testClient, ep.Authority, ep.IMAP, ep.CAFile, strings.Join(users, ", "))), "big.yaml")
	if err != nil {
		t.Fatal(err)
	}
	nc := newNATS(t)
	rctx, rcancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer rcancel()
	res := Run(rctx, Options{Config: cfg, NATS: nc, Once: true, Logger: debugLogger(&logtest.Buffer{})})
	published := 0
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Mailbox.Address, r.Err)
		}
		published += r.Published
	}
	if published != n {
		t.Fatalf("published %d, want %d", published, n)
	}
	if got := s.TokenRequests(testClient); got != 1 {
		t.Fatalf("%d token requests for %d mailboxes of one app, want 1", got, n)
	}
	if got := s.IMAPConnections(); got != n {
		t.Fatalf("%d IMAP connections, want one per mailbox (%d)", got, n)
	}
}
