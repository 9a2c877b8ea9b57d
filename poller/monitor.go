package poller

import (
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/graph"
)

// Mailbox states, as shown in /status and logs.
const (
	StateStarting   = "starting"
	StateConnected  = "connected"
	StateCaughtUp   = "caught up"
	StateBackingOff = "backing off"
	StateFailed     = "failed"
	StateStopped    = "stopped"
	StateStandby    = "standby" // another instance holds the lease
)

// MailboxStatus is one mailbox's entry in /status.
type MailboxStatus struct {
	Account     string          `json:"account"`
	Mailbox     string          `json:"mailbox"`
	Folder      string          `json:"folder"`
	Protocol    string          `json:"protocol"`
	State       string          `json:"state"`
	LastPoll    *time.Time      `json:"last_poll,omitempty"`
	LastSuccess *time.Time      `json:"last_success,omitempty"`
	LastError   string          `json:"last_error,omitempty"`
	Fix         string          `json:"fix,omitempty"`
	NextTry     *time.Time      `json:"next_try,omitempty"`
	Published   int64           `json:"published"`
	Backlog     int             `json:"backlog"`
	Checkpoint  json.RawMessage `json:"checkpoint,omitempty"`
	// Stalled is set when the server stopped answering (a read deadline
	// or the stall watchdog ended the connection) and cleared by the next
	// poll that goes through; /readyz is not ready meanwhile.
	Stalled bool `json:"stalled,omitempty"`
}

// Monitor holds the status of every mailbox and the Prometheus metrics.
// It is safe for concurrent use; its Handler serves /metrics, /healthz,
// /readyz and /status.
type Monitor struct {
	mu      sync.Mutex
	boxes   map[string]*MailboxStatus
	ready   func() error // NATS connectivity, set by Run
	push    http.Handler // Graph change notifications, set by Run when configured
	reg     *prometheus.Registry
	metrics metrics
}

type metrics struct {
	published  *prometheus.CounterVec   // account, mailbox
	bytes      *prometheus.CounterVec   // account, mailbox
	deadLetter *prometheus.CounterVec   // account, mailbox
	errors     *prometheus.CounterVec   // account, mailbox, kind: auth|connect|throttled|stalled|nats|other (errorKinds)
	pollDur    *prometheus.HistogramVec // account, mailbox
	publishDur *prometheus.HistogramVec // account
	backlog    *prometheus.GaugeVec     // account, mailbox
	oldest     *prometheus.GaugeVec     // account, mailbox: age of the oldest message seen but not yet handled
	lease      *prometheus.GaugeVec     // account, mailbox: 1 while this instance holds the mailbox
	panics     prometheus.Counter
}

// NewMonitor makes an empty monitor with its own metrics registry.
func NewMonitor() *Monitor {
	m := &Monitor{boxes: map[string]*MailboxStatus{}, reg: prometheus.NewRegistry()}
	mb := []string{"account", "mailbox"}
	// Gauges are per folder: a mailbox with several folders has one loop,
	// and one value, per folder (counters add up per mailbox).
	mbf := []string{"account", "mailbox", "folder"}
	m.metrics = metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailpoller_messages_published_total",
			Help: "Events published and acknowledged by JetStream."}, mb),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailpoller_bytes_published_total",
			Help: "Raw message bytes of the published events."}, mb),
		deadLetter: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailpoller_dead_letters_total",
			Help: "Messages sent to the dead-letter subject."}, mb),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailpoller_errors_total",
			Help: "Errors by kind: auth, connect, throttled, stalled, nats, other."}, []string{"account", "mailbox", "kind"}),
		pollDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mailpoller_poll_duration_seconds",
			Help: "Time of one poll of a mailbox, publishing included.", Buckets: prometheus.ExponentialBuckets(0.01, 3, 10)}, mb),
		publishDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mailpoller_publish_duration_seconds",
			Help: "Time from parsed message to PubAck.", Buckets: prometheus.ExponentialBuckets(0.001, 3, 10)}, []string{"account"}),
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mailpoller_backlog_messages",
			Help: "Messages found new in the current poll and not handled yet."}, mbf),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mailpoller_oldest_unprocessed_age_seconds",
			Help: "Age of the oldest message found new and not handled yet (0 when none)."}, mbf),
		lease: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mailpoller_lease_owned",
			Help: "1 while this instance polls the mailbox, 0 while another one does."}, mbf),
		panics: prometheus.NewCounter(prometheus.CounterOpts{Name: "mailpoller_panics_total",
			Help: "Recovered panics in mailbox loops."}),
	}
	m.reg.MustRegister(m.metrics.published, m.metrics.bytes, m.metrics.deadLetter, m.metrics.errors,
		m.metrics.pollDur, m.metrics.publishDur, m.metrics.backlog, m.metrics.oldest, m.metrics.lease, m.metrics.panics)
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mailpoller_mailboxes",
		Help: "Mailboxes configured."}, func() float64 { m.mu.Lock(); defer m.mu.Unlock(); return float64(len(m.boxes)) }))
	m.reg.MustRegister(newSinceCollector(m))
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// errorKinds are the values of mailpoller_errors_total's kind label; each
// mailbox has every series from its start, at zero, so a rate() or an
// alert sees the first error.
var errorKinds = []string{"auth", "connect", "throttled", "stalled", "nats", "other"}

// zeroErrors makes mb's errors_total and dead_letters_total series
// exist, so increase() and rate() see the first one.
func (m *Monitor) zeroErrors(mb config.Mailbox) {
	for _, k := range errorKinds {
		m.metrics.errors.WithLabelValues(mb.Account.Name, mb.Address, k)
	}
	m.metrics.deadLetter.WithLabelValues(mb.Account.Name, mb.Address)
}

// Registry is where the monitor's metrics live (to add collectors).
func (m *Monitor) Registry() *prometheus.Registry { return m.reg }

func key(mb config.Mailbox) string { return mb.Account.Name + "/" + mb.Address + "/" + mb.Folder }

// update applies f to the mailbox's status under the lock.
func (m *Monitor) update(mb config.Mailbox, f func(*MailboxStatus)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.boxes[key(mb)]
	if !ok {
		s = &MailboxStatus{Account: mb.Account.Name, Mailbox: mb.Address, Folder: mb.Folder, Protocol: mb.Account.Protocol, State: StateStarting}
		m.boxes[key(mb)] = s
	}
	f(s)
}

// remove forgets a mailbox (after a reload dropped it) and deletes its
// metric series, unless another folder of the same mailbox (or, for the
// per-account ones, another mailbox of the account) is still configured.
func (m *Monitor) remove(mb config.Mailbox) {
	m.mu.Lock()
	delete(m.boxes, key(mb))
	boxLeft, acctLeft := false, false
	for _, s := range m.boxes {
		if s.Account == mb.Account.Name {
			acctLeft = true
			boxLeft = boxLeft || s.Mailbox == mb.Address
		}
	}
	m.mu.Unlock()
	if !boxLeft {
		l := prometheus.Labels{"account": mb.Account.Name, "mailbox": mb.Address}
		for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
			m.metrics.published, m.metrics.bytes, m.metrics.deadLetter, m.metrics.errors,
			m.metrics.pollDur, m.metrics.backlog, m.metrics.oldest, m.metrics.lease,
		} {
			v.DeletePartialMatch(l)
		}
	}
	if !acctLeft {
		m.metrics.publishDur.DeletePartialMatch(prometheus.Labels{"account": mb.Account.Name})
	}
}

// Snapshot returns a copy of every mailbox's status, sorted.
func (m *Monitor) Snapshot() []MailboxStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]MailboxStatus, 0, len(m.boxes))
	for _, s := range m.boxes {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Account != out[j].Account {
			return out[i].Account < out[j].Account
		}
		return out[i].Mailbox+out[i].Folder < out[j].Mailbox+out[j].Folder
	})
	return out
}

// sinceCollector exports seconds since each mailbox's last successful poll.
type sinceCollector struct {
	m    *Monitor
	desc *prometheus.Desc
}

func newSinceCollector(m *Monitor) *sinceCollector {
	return &sinceCollector{m: m, desc: prometheus.NewDesc("mailpoller_seconds_since_last_success",
		"Seconds since the mailbox's last successful poll (since start when it never succeeded).", []string{"account", "mailbox", "folder"}, nil)}
}

func (c *sinceCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

var started = time.Now()

func (c *sinceCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.m.Snapshot() {
		t := started
		if s.LastSuccess != nil {
			t = *s.LastSuccess
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, time.Since(t).Seconds(), s.Account, s.Mailbox, s.Folder)
	}
}

// Handler serves /metrics, /healthz, /readyz and /status, and Microsoft
// Graph's change notifications at /graph/notifications when
// graph.notifications_url is set.
func (m *Monitor) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(graph.NotificationsPath, func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		h := m.push
		m.mu.Unlock()
		if h == nil {
			http.Error(w, graph.NotSetText, http.StatusNotFound)
			return
		}
		h.ServeHTTP(w, r)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := m.readiness(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(struct {
			Mailboxes []MailboxStatus `json:"mailboxes"`
		}{m.Snapshot()})
	})
	return mux
}

// readiness: NATS is connected and every mailbox is either healthy or
// failing for a reported reason (it has a last_error), but not stalled: a
// server that stopped answering is a hang, not a reason.
func (m *Monitor) readiness() error {
	m.mu.Lock()
	ready := m.ready
	m.mu.Unlock()
	if ready != nil {
		if err := ready(); err != nil {
			return err
		}
	}
	for _, s := range m.Snapshot() {
		if s.State == StateStarting {
			return &notReady{s.Account + "/" + s.Mailbox + " has not connected yet"}
		}
		if s.Stalled {
			return &notReady{s.Account + "/" + s.Mailbox + "/" + s.Folder + " stalled: " + s.LastError}
		}
	}
	return nil
}

type notReady struct{ msg string }

func (e *notReady) Error() string { return e.msg }
