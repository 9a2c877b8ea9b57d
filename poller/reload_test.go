package poller

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/internal/logtest"
	"github.com/mailpoller/mailpoller/internal/wait"
	"github.com/mailpoller/mailpoller/sim"
)

// runWithLog is startRun with the log kept for the test to read.
func runWithLog(t *testing.T, cfg *config.Config, reload chan *config.Config, buf *logtest.Buffer) (*Monitor, func()) {
	t.Helper()
	nc := newNATS(t)
	mon := NewMonitor()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, Options{Config: cfg, NATS: nc, Monitor: mon, Reload: reload, Logger: debugLogger(buf)})
	}()
	stop := func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("Run did not stop within 20s of its context ending")
		}
	}
	t.Cleanup(stop)
	return mon, stop
}

// TestReloadRetriesFailingMailbox: billing cannot log in (Exchange has
// no such mailbox for the app yet), so it backs off for the long,
// permanent wait; the admin fixes it and sends SIGHUP with the same file:
// billing retries at once, support is left alone.
func TestReloadRetriesFailingMailbox(t *testing.T) {
	seed := &sim.Seed{
		Tenants: []sim.Tenant{{ID: testTenant, Domain: "contoso.test"}},
		Apps: []sim.App{{Tenant: testTenant, ClientID: testClient, Secret: testSecret,
			Roles: []string{"IMAP.AccessAsApp", "full_access_as_app"}, Mailboxes: []string{"*"}}},
		Mailboxes: []sim.MailboxSeed{{Address: "support@contoso.test", Folders: []string{"Processed"}}},
	}
	env := startSimEnv(t, seed, []string{"support@contoso.test", "billing@contoso.test", "hr@contoso.test"})
	s := env.sim
	cfg := env.config(t, "imap", "")
	reload := make(chan *config.Config)
	var buf logtest.Buffer
	mon, _ := runWithLog(t, cfg, reload, &buf)
	wait.For(t, 20*time.Second, "billing backing off and support caught up", func() bool {
		b, _ := status(mon, env.boxes[1])
		sp, _ := status(mon, env.boxes[0])
		return b.State == StateBackingOff && sp.State == StateCaughtUp
	})
	if b, _ := status(mon, env.boxes[1]); b.NextTry == nil || time.Until(*b.NextTry) < time.Minute {
		t.Fatalf("billing's next try is %v, want the long wait of an admin-only failure", b.NextTry)
	}
	sessions := s.SessionsFor(env.boxes[0])
	tokens := s.TokenRequests(testClient)
	s.Store().AddMailbox(env.boxes[1]) // the admin's fix
	s.Store().Deliver(env.boxes[1], "INBOX", sim.Generate(env.boxes[1], 1), time.Now())
	reload <- env.config(t, "imap", "") // SIGHUP, file unchanged
	wait.For(t, 20*time.Second, "billing caught up with its message", func() bool {
		b, _ := status(mon, env.boxes[1])
		return b.State == StateCaughtUp && b.Published == 1
	})
	if n := s.TokenRequests(testClient); n != tokens+1 {
		// The cached token predates the admin's fix (a role granted
		// after it was issued would be missing from it).
		t.Errorf("%d token requests after the reload, want %d: a new token for the retry", n, tokens+1)
	}
	if n := s.SessionsFor(env.boxes[0]); n != sessions {
		t.Errorf("support has %d IMAP sessions after the reload, want its %d undisturbed", n, sessions)
	}
	log := buf.String()
	if strings.Contains(log, "mailbox stopping") {
		t.Errorf("a reload with an unchanged file stopped a mailbox:\n%s", log)
	}
	if !strings.Contains(log, "retried=[support/billing@contoso.test/INBOX]") {
		t.Errorf("the reload line does not name billing as retried:\n%s", log)
	}
}

// TestOnceSurvivesTokenOutage: a token endpoint answering 503 for a while
// is retried within --once's time budget (not a count of attempts); a
// permanent refusal fails at once.
func TestOnceSurvivesTokenOutage(t *testing.T) {
	old := backoffMin
	backoffMin = 20 * time.Millisecond // the budget is time, so shorter waits mean more attempts
	t.Cleanup(func() { backoffMin = old })
	env := newSimEnv(t)
	cfg := env.config(t, "imap", "")
	nc := newNATS(t)
	env.sim.FailTokens(sim.TokenFault{Status: 503}, 5)
	runAll(t, cfg, nc, slog.New(slog.DiscardHandler))
	if n := env.sim.TokenRequests(testClient); n < 6 {
		t.Errorf("%d token requests, want the 5 refused and one more", n)
	}

	env2 := newSimEnv(t)
	env2.sim.FailTokens(sim.TokenFault{Status: 400, AADSTS: 7000215, Error: "invalid_client", Text: "Invalid client secret provided."}, 100)
	begun := time.Now()
	res := runOnce(t, env2.config(t, "imap", ""), nc, slog.New(slog.DiscardHandler))
	if took := time.Since(begun); took > 5*time.Second {
		t.Errorf("a permanent token error took %v to fail --once", took)
	}
	for _, r := range res {
		if r.Err == nil {
			t.Errorf("%s: no error for a refused client secret", r.Mailbox.Address)
		}
	}
}

// series returns the label sets of metric name whose mailbox label is mailbox.
func series(t *testing.T, mon *Monitor, name, mailbox string) []*dto.Metric {
	t.Helper()
	fams, err := mon.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []*dto.Metric
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "mailbox" && l.GetValue() == mailbox {
					out = append(out, m)
				}
			}
		}
	}
	return out
}

// TestMetricsLifecycle: runtime collectors, errors_total at zero per kind
// from the start, every series of a removed mailbox gone after the
// reload, and the reload and shutdown lines.
func TestMetricsLifecycle(t *testing.T) {
	env := newSimEnv(t)
	env.sim.Store().Deliver(env.boxes[1], "INBOX", sim.Generate(env.boxes[1], 1), time.Now())
	cfg := env.config(t, "imap", "")
	reload := make(chan *config.Config)
	var buf logtest.Buffer
	mon, stop := runWithLog(t, cfg, reload, &buf)
	wait.For(t, 20*time.Second, "billing caught up", func() bool {
		s, _ := status(mon, env.boxes[1])
		return s.State == StateCaughtUp && s.Published == 1
	})
	fams, _ := mon.Registry().Gather()
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
	}
	for _, n := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if !names[n] {
			t.Errorf("metric %s missing", n)
		}
	}
	kinds := map[string]float64{}
	for _, m := range series(t, mon, "mailpoller_errors_total", env.boxes[0]) {
		for _, l := range m.GetLabel() {
			if l.GetName() == "kind" {
				kinds[l.GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	for _, k := range errorKinds {
		if v, ok := kinds[k]; !ok || v != 0 {
			t.Errorf("mailpoller_errors_total{kind=%q} for support = %v, %v; want 0, present", k, v, ok)
		}
	}
	if dl := series(t, mon, "mailpoller_dead_letters_total", env.boxes[0]); len(dl) != 1 || dl[0].GetCounter().GetValue() != 0 {
		t.Errorf("mailpoller_dead_letters_total for support: %v, want one series at 0", dl)
	}
	if len(series(t, mon, "mailpoller_messages_published_total", env.boxes[1])) == 0 {
		t.Fatal("billing has no published_total series before the reload")
	}
	cfg2 := env.config(t, "imap", "")
	cfg2.Accounts[0].AdditionalUsers[0].Address = env.boxes[2]
	reload <- cfg2
	wait.For(t, 20*time.Second, "hr running and billing gone", func() bool {
		_, ok := status(mon, env.boxes[2])
		_, still := status(mon, env.boxes[1])
		return ok && !still
	})
	fams, _ = mon.Registry().Gather()
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "mailbox" && l.GetValue() == env.boxes[1] {
					t.Errorf("%s still has a series for removed billing", f.GetName())
				}
			}
		}
	}
	wait.For(t, 5*time.Second, "reload line logged", func() bool {
		return strings.Contains(buf.String(), "config reloaded")
	})
	if log := buf.String(); !strings.Contains(log, "added=[support/hr@contoso.test/INBOX] removed=[support/billing@contoso.test/INBOX] changed=[]") {
		t.Errorf("the reload line does not name the added and removed mailboxes:\n%s", log)
	}
	stop()
	if log := buf.String(); !strings.Contains(log, `msg="shutting down"`) || !strings.Contains(log, `msg="shut down"`) {
		t.Errorf("no shutdown lines:\n%s", log)
	}
}
