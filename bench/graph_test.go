package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailpoller/mailpoller/internal/relay"
	"github.com/mailpoller/mailpoller/internal/wait"
	"github.com/mailpoller/mailpoller/poller"
	"github.com/mailpoller/mailpoller/publish"
	"github.com/mailpoller/mailpoller/sim"
)

// graphKinds reports the Graph requests of box since before, per message:
// delta pages, $value downloads, $batch requests (each counted once,
// whatever it carries), subscription requests, and the rest; and in all.
func graphKinds(b *testing.B, g *sim.GraphServer, box string, before map[string]int, total, n int) {
	other := total
	for _, k := range []string{"delta", "value", "batch", "subscribe", "renew"} {
		c := g.Count(box, k) - before[k]
		other -= c
		b.ReportMetric(float64(c)/float64(n), k+"/msg")
	}
	b.ReportMetric(float64(other)/float64(n), "other/msg")
	b.ReportMetric(float64(total)/float64(n), "requests/msg")
}

func graphCounts(g *sim.GraphServer, box string) map[string]int {
	m := map[string]int{}
	for _, k := range []string{"delta", "value", "batch", "subscribe", "renew"} {
		m[k] = g.Count(box, k)
	}
	return m
}

// graphConfig is the bench account over Graph at server, with defaults.
func graphConfig(b *testing.B, s *sim.Sim, server, defaults, box string) string {
	yaml := benchYAML(s, server, s.Endpoints().CAFile, b.TempDir(), defaults, box)
	return strings.Replace(yaml, "  - name: bench\n", "  - name: bench\n    protocol: graph\n", 1)
}

// BenchmarkGraphBacklog (issue 10) polls a 1,000-message backlog in one
// mailbox over Graph once, marking read, and reports the requests per
// message by kind ($batch counted as one request) and msgs/s, at
// loopback and at a 20 ms round trip (a relay delaying 10 ms each way).
func BenchmarkGraphBacklog(b *testing.B) {
	const n, box = 1000, "backlog@contoso.test"
	for _, row := range []struct {
		name   string
		oneWay time.Duration
	}{{"loopback", 0}, {"rtt20ms", 10 * time.Millisecond}} {
		b.Run(row.name, func(b *testing.B) {
			for b.Loop() {
				s := startSim(b, box)
				for i := range n {
					s.Store().Deliver(box, "INBOX", sim.Generate(box, i), time.Now())
				}
				u, err := url.Parse(s.Endpoints().Graph)
				if err != nil {
					b.Fatal(err)
				}
				r, err := relay.StartDelayed(u.Host, row.oneWay)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { r.Close() })
				u.Host = r.Addr()
				cfg := parse(b, graphConfig(b, s, u.String(), "{start_from: all, after_read: mark_read}", box))
				ctx, cancel := context.WithCancel(context.Background())
				nc, err := publish.Connect(ctx, cfg.NATS, discard())
				if err != nil {
					cancel()
					b.Fatal(err)
				}
				g := s.Graph()
				before, reqs := graphCounts(g, box), g.Requests(box)
				start := time.Now()
				res := poller.Run(ctx, poller.Options{Config: cfg, NATS: nc, Logger: discard(), Once: true})
				elapsed := time.Since(start)
				nc.Close()
				cancel()
				if len(res) != 1 || res[0].Err != nil || res[0].Published != n {
					b.Fatalf("results %+v, want one mailbox with %d published", res, n)
				}
				graphKinds(b, g, box, before, g.Requests(box)-reqs, n)
				b.ReportMetric(n/elapsed.Seconds(), "msgs/s")
				b.ReportMetric(0, "ns/op")
			}
		})
	}
}

// BenchmarkGraphPush (issue 10): the poller runs with change
// notifications on the simulator and a poll interval of an hour; each
// iteration delivers one message and waits for its event. It reports the
// latency from delivery to PubAck and the Graph requests per message in
// this steady state (notification → delta → $value → $batch mark read).
func BenchmarkGraphPush(b *testing.B) {
	const box = "push@contoso.test"
	s := startSim(b, box)
	var mon atomic.Pointer[poller.Monitor]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m := mon.Load(); m != nil {
			m.Handler().ServeHTTP(w, r)
			return
		}
		http.Error(w, "not yet", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	cfg := parse(b, graphConfig(b, s, s.Endpoints().Graph, "{start_from: all, poll_interval: 1h}", box))
	cfg.Graph.NotificationsURL = srv.URL + "/graph/notifications"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nc, err := publish.Connect(ctx, cfg.NATS, discard())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	m := poller.NewMonitor()
	mon.Store(m)
	done := make(chan struct{})
	go func() {
		defer close(done)
		poller.Run(ctx, poller.Options{Config: cfg, NATS: nc, Logger: discard(), Monitor: m})
	}()
	defer func() { cancel(); <-done }()
	waitState(b, m, poller.StateCaughtUp)
	g := s.Graph()
	waitFor(b, "subscribed", func() bool { return len(g.Subscriptions(box)) == 1 })
	cons, _ := nc.JetStream().OrderedConsumer(ctx, nc.Stream(), jetstream.OrderedConsumerConfig{})
	before, reqs := graphCounts(g, box), g.Requests(box)
	var lat []time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		s.Store().Deliver(box, "INBOX", sim.Generate(box, i), start)
		if _, err := cons.Next(jetstream.FetchMaxWait(30 * time.Second)); err != nil {
			b.Fatalf("no event within 30s (the poll is an hour away): %v", err)
		}
		lat = append(lat, time.Since(start))
	}
	// The last message's mark-read may still be in flight; wait for it
	// so that every message's requests are counted.
	waitFor(b, "all marked read", func() bool {
		msgs, _ := s.Store().Messages(box, "INBOX")
		for _, msg := range msgs {
			if !msg.Seen() {
				return false
			}
		}
		return true
	})
	graphKinds(b, g, box, before, g.Requests(box)-reqs, len(lat))
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}

func waitFor(b *testing.B, what string, cond func() bool) { wait.For(b, 30*time.Second, what, cond) }
