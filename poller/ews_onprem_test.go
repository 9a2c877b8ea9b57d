package poller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/ews"
	"github.com/mailpoller/mailpoller/internal/logtest"
	"github.com/mailpoller/mailpoller/internal/wait"
	"github.com/mailpoller/mailpoller/publish"
	"github.com/mailpoller/mailpoller/sim"
	"github.com/mailpoller/mailpoller/source"
)

const onPremPassword = "Winter-2026!"

// newOnPremEnv is a simulator seeded like an Exchange Server: two
// mailboxes, a service account with FullAccess on both (delegate), and
// one with the ApplicationImpersonation role.
func newOnPremEnv(t *testing.T) *simEnv {
	t.Helper()
	boxes := []string{"support@contoso.test", "billing@contoso.test"}
	seed := &sim.Seed{
		Tenants: []sim.Tenant{{ID: testTenant, Domain: "contoso.test"}},
		Users: []sim.User{
			{Login: "svc@contoso.test", Domain: "CONTOSO", Password: onPremPassword, Mailboxes: boxes},
			{Login: "imp@contoso.test", Domain: "CONTOSO", Password: onPremPassword, Impersonation: true},
		},
	}
	for _, b := range boxes {
		seed.Mailboxes = append(seed.Mailboxes, sim.MailboxSeed{Address: b})
	}
	return startSimEnv(t, seed, boxes)
}

// onPremConfig is an EWS account with a username and password.
func (e *simEnv) onPremConfig(t *testing.T, auth, username, access string) *config.Config {
	t.Helper()
	t.Setenv("TEST_EWS_PASSWORD", onPremPassword)
	y := fmt.Sprintf(`nats: {url: "nats://127.0.0.1:1"}
http: {listen: ""}
defaults: {poll_interval: 1s, start_from: all}
accounts:
  - name: onprem
    protocol: ews
    auth: %s
    username: '%s'
    password: ${TEST_EWS_PASSWORD}
    access: %s
    server: %s
    tls: {ca_file: %s}
    mailbox: %s
    additional_users: [%s]
`, auth, username, access, e.ep.EWS, e.ep.CAFile, e.boxes[0], e.boxes[1])
	cfg, err := config.Parse([]byte(y), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestEWSOnPremises reads both mailboxes over EWS with NTLM (delegate
// access through FullAccess) and with Basic (impersonation), marks the
// mail read, and logs no password.
func TestEWSOnPremises(t *testing.T) {
	for _, c := range []struct{ auth, username, access string }{
		{"ntlm", `CONTOSO\svc`, "delegate"},
		{"ntlm", "svc@contoso.test", "delegate"},
		{"basic", "imp@contoso.test", "impersonation"},
	} {
		t.Run(c.auth+"/"+c.access+"/"+strings.ReplaceAll(c.username, `\`, "_"), func(t *testing.T) {
			env := newOnPremEnv(t)
			want := len(env.deliverCorpus(t))
			nc := newNATS(t)
			var logs logtest.Buffer
			runAll(t, env.onPremConfig(t, c.auth, c.username, c.access), nc, debugLogger(&logs))
			if n := len(events(t, nc)); n != want {
				t.Fatalf("%d events, want %d", n, want)
			}
			for _, box := range env.boxes {
				msgs, _ := env.sim.Store().Messages(box, "INBOX")
				for _, m := range msgs {
					if !m.Seen() {
						t.Errorf("%s UID %d not marked read", box, m.UID)
					}
				}
			}
			if strings.Contains(logs.String(), onPremPassword) {
				t.Fatal("the password appears in the logs")
			}
		})
	}
}

// TestEWSOnPremisesRefusals: each on-premises refusal ends as a permanent
// error whose fix names the admin step.
func TestEWSOnPremisesRefusals(t *testing.T) {
	env := newOnPremEnv(t)
	cases := []struct {
		name               string
		prepare            func()
		auth, user, access string
		want               string // in the error
		fix                string // in the fix
	}{
		{"basic off", func() { env.sim.EWS().BasicAuth(false) }, "basic", "imp@contoso.test", "impersonation",
			"does not offer Basic", "-BasicAuthentication $true"},
		{"windows auth off", func() { env.sim.EWS().BasicAuth(true); env.sim.EWS().WindowsAuth(false) }, "ntlm", `CONTOSO\svc`, "delegate",
			"does not offer NTLM", "-WindowsAuthentication $true"},
		{"wrong password", func() { env.sim.EWS().WindowsAuth(true) }, "ntlm", `CONTOSO\nobody`, "delegate",
			"refused the username and password", "password_file"},
		{"no impersonation right", func() {}, "basic", "svc@contoso.test", "impersonation",
			"ErrorImpersonateUserDenied", "ApplicationImpersonation"},
	}
	for _, c := range cases {
		c.prepare()
		cfg := env.onPremConfig(t, c.auth, c.user, c.access)
		cfg.Accounts[0].AdditionalUsers = nil
		res := runOnce(t, cfg, newNATS(t), debugLogger(&logtest.Buffer{}))
		err := res[0].Err
		if err == nil || !errors.Is(err, source.ErrPermanent) || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: %v; want a permanent error with %q", c.name, err, c.want)
		}
		var re *ews.ResponseError
		if !errors.As(err, &re) || !strings.Contains(re.Fix(source.Admin{Mailbox: env.boxes[0]}), c.fix) {
			t.Errorf("%s: fix %q lacks %q", c.name, re.Fix(source.Admin{}), c.fix)
		}
	}
}

// TestEWSOnPremisesPush: streaming notifications work over NTLM too (the
// long-lived GetStreamingEvents request gets its own authenticated
// connection): with a 60 s poll interval, new mail is an event within
// seconds.
func TestEWSOnPremisesPush(t *testing.T) {
	env := newOnPremEnv(t)
	cfg := env.onPremConfig(t, "ntlm", `CONTOSO\svc`, "delegate")
	d := config.Duration(60 * time.Second)
	cfg.Defaults.PollInterval, cfg.Accounts[0].PollInterval = &d, &d
	events := make(chan *publish.Event, 1)
	mon := NewMonitor()
	var logs logtest.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, Options{Config: cfg, NATS: newNATS(t), Monitor: mon, Logger: debugLogger(&logs),
			OnEvent: func(ev *publish.Event) { events <- ev }})
	}()
	defer func() { cancel(); <-done }()
	wait.For(t, 20*time.Second, "caught up", func() bool {
		s, ok := status(mon, env.boxes[0])
		return ok && s.State == StateCaughtUp
	})
	for i := 1; i <= 5; i++ {
		env.sim.Store().Deliver(env.boxes[0], "INBOX", sim.Generate(env.boxes[0], i), time.Now())
		select {
		case <-events:
		case <-time.After(15 * time.Second):
			t.Fatalf("no event for new mail %d within 15s over NTLM (poll interval 60s)", i)
		}
	}
}

// TestEWSHybridModernAuth: an Exchange Server set up for hybrid modern auth
// takes app-only tokens for its own origin, not Exchange Online's. With
// `resource` the account reads and marks its mail; without it the refusal
// is permanent and says to set `resource`.
func TestEWSHybridModernAuth(t *testing.T) {
	boxes := []string{"support@contoso.test", "billing@contoso.test"}
	seed := &sim.Seed{
		Tenants: []sim.Tenant{{ID: testTenant, Domain: "contoso.test"}},
		Apps:    []sim.App{{Tenant: testTenant, ClientID: testClient, Secret: testSecret, Roles: []string{"full_access_as_app"}, Mailboxes: []string{"*"}}},
		Hybrid:  "https://mail.contoso.test",
	}
	for _, b := range boxes {
		seed.Mailboxes = append(seed.Mailboxes, sim.MailboxSeed{Address: b})
	}
	env := startSimEnv(t, seed, boxes)
	want := len(env.deliverCorpus(t))

	res := runOnce(t, env.config(t, "ews", ""), newNATS(t), debugLogger(&logtest.Buffer{}))
	err := res[0].Err
	if err == nil || !errors.Is(err, source.ErrPermanent) || !strings.Contains(err.Error(), "resource") {
		t.Fatalf("Exchange Online token at a hybrid server: %v; want a permanent error naming resource", err)
	}

	nc := newNATS(t)
	runAll(t, env.config(t, "ews", "    resource: https://mail.contoso.test/\n"), nc, debugLogger(&logtest.Buffer{}))
	if n := len(events(t, nc)); n != want {
		t.Fatalf("%d events, want %d", n, want)
	}
	env.assertRead(t)
}
