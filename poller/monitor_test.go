package poller

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/internal/logtest"
	"github.com/mailpoller/mailpoller/internal/wait"
	"github.com/mailpoller/mailpoller/sim"
)

// startRun starts Run in the background and returns its monitor and a
// stop function that waits for it.
func startRun(t *testing.T, cfg *config.Config, reload chan *config.Config) (*Monitor, func()) {
	t.Helper()
	return runWithLog(t, cfg, reload, &logtest.Buffer{})
}

func status(mon *Monitor, mailbox string) (MailboxStatus, bool) {
	for _, s := range mon.Snapshot() {
		if s.Mailbox == mailbox {
			return s, true
		}
	}
	return MailboxStatus{}, false
}

func TestMetricsAndStatus(t *testing.T) {
	env := newSimEnv(t)
	for i := 1; i <= 4; i++ {
		env.sim.Store().Deliver(env.boxes[0], "INBOX", sim.Generate(env.boxes[0], i), time.Now())
	}
	cfg := env.config(t, "imap", "")
	mon, _ := startRun(t, cfg, nil)
	srv := httptest.NewServer(mon.Handler())
	defer srv.Close()
	wait.For(t, 20*time.Second, "support caught up with 4 events", func() bool {
		s, _ := status(mon, env.boxes[0])
		return s.State == StateCaughtUp && s.Published == 4
	})
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	wait.For(t, 20*time.Second, "/readyz 200", func() bool { code, _ := get("/readyz"); return code == 200 })
	code, body := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	value := func(name, mailbox string) float64 {
		f, ok := families[name]
		if !ok {
			t.Fatalf("metric %s missing", name)
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "mailbox" && l.GetValue() == mailbox {
					switch {
					case m.Counter != nil:
						return m.Counter.GetValue()
					case m.Gauge != nil:
						return m.Gauge.GetValue()
					case m.Histogram != nil:
						return float64(m.Histogram.GetSampleCount())
					}
				}
			}
		}
		t.Fatalf("metric %s has no series for %s", name, mailbox)
		return 0
	}
	if v := value("mailpoller_messages_published_total", env.boxes[0]); v != 4 {
		t.Errorf("published_total = %v, want 4", v)
	}
	if v := value("mailpoller_bytes_published_total", env.boxes[0]); v <= 0 {
		t.Errorf("bytes_published_total = %v", v)
	}
	if v := value("mailpoller_poll_duration_seconds", env.boxes[0]); v < 1 {
		t.Errorf("poll_duration_seconds count = %v", v)
	}
	if v := value("mailpoller_backlog_messages", env.boxes[0]); v != 0 {
		t.Errorf("backlog = %v, want 0", v)
	}
	if v := value("mailpoller_seconds_since_last_success", env.boxes[1]); v > 60 {
		t.Errorf("seconds_since_last_success = %v", v)
	}
	_, body = get("/status")
	var st struct{ Mailboxes []MailboxStatus }
	if err := json.Unmarshal([]byte(body), &st); err != nil || len(st.Mailboxes) != 2 {
		t.Fatalf("/status = %v, %s", err, body)
	}
	for _, m := range st.Mailboxes {
		if m.LastSuccess == nil || len(m.Checkpoint) == 0 && m.Mailbox == env.boxes[0] {
			t.Errorf("/status entry %+v lacks last_success or checkpoint", m)
		}
	}
	if strings.Contains(body, testSecret) || strings.Contains(get2(t, srv.URL+"/metrics"), testSecret) {
		t.Fatal("secret in /status or /metrics")
	}
}

func get2(t *testing.T, url string) string {
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestReload adds and removes a mailbox under a running poller.
func TestReload(t *testing.T) {
	env := newSimEnv(t)
	cfg1 := env.config(t, "imap", "")
	reload := make(chan *config.Config)
	mon, _ := startRun(t, cfg1, reload)
	wait.For(t, 20*time.Second, "billing caught up", func() bool {
		s, ok := status(mon, env.boxes[1])
		return ok && s.State == StateCaughtUp
	})
	// The new config swaps billing for hr.
	cfg2 := env.config(t, "imap", "")
	cfg2.Accounts[0].AdditionalUsers[0].Address = env.boxes[2]
	reload <- cfg2
	wait.For(t, 20*time.Second, "hr caught up and billing gone", func() bool {
		h, ok := status(mon, env.boxes[2])
		_, still := status(mon, env.boxes[1])
		return ok && h.State == StateCaughtUp && !still
	})
	env.sim.Store().Deliver(env.boxes[1], "INBOX", sim.Generate(env.boxes[1], 1), time.Now())
	env.sim.Store().Deliver(env.boxes[2], "INBOX", sim.Generate(env.boxes[2], 1), time.Now())
	wait.For(t, 20*time.Second, "hr's message published", func() bool {
		h, _ := status(mon, env.boxes[2])
		return h.Published == 1
	})
	if msgs, _ := env.sim.Store().Messages(env.boxes[1], "INBOX"); msgs[0].Seen() {
		t.Fatal("billing was polled after it left the config")
	}
	if s, _ := status(mon, env.boxes[0]); s.State != StateCaughtUp {
		t.Fatalf("support (unchanged) is %q after the reload", s.State)
	}
}
