package bench

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/internal/relay"
	"github.com/mailpoller/mailpoller/poller"
	"github.com/mailpoller/mailpoller/publish"
	"github.com/mailpoller/mailpoller/sim"
)

// BenchmarkEWSBacklog (issue 12 item 4) polls a 1,000-message backlog in
// one mailbox over EWS once, marking read, and reports the EWS requests
// per message by operation and msgs/s, at loopback and at a 20 ms round
// trip (a relay delaying 10 ms each way in front of the sim's HTTPS port).
func BenchmarkEWSBacklog(b *testing.B) {
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
				ep := s.Endpoints()
				u, err := url.Parse(ep.EWS)
				if err != nil {
					b.Fatal(err)
				}
				r, err := relay.StartDelayed(u.Host, row.oneWay)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { r.Close() })
				u.Host = r.Addr()
				yaml := benchYAML(s, u.String(), ep.CAFile, b.TempDir(), "{start_from: all, after_read: mark_read}", box)
				cfg := parse(b, strings.Replace(yaml, "  - name: bench\n", "  - name: bench\n    protocol: ews\n", 1))
				ctx, cancel := context.WithCancel(context.Background())
				nc, err := publish.Connect(ctx, cfg.NATS, discard())
				if err != nil {
					cancel()
					b.Fatal(err)
				}
				before := s.EWS().Requests()
				start := time.Now()
				res := poller.Run(ctx, poller.Options{Config: cfg, NATS: nc, Logger: discard(), Once: true})
				elapsed := time.Since(start)
				after := s.EWS().Requests()
				nc.Close()
				cancel()
				if len(res) != 1 || res[0].Err != nil || res[0].Published != n {
					b.Fatalf("results %+v, want one mailbox with %d published", res, n)
				}
				kinds := map[string]int{}
				total := 0
				for op, c := range after {
					c -= before[op]
					total += c
					switch op {
					case "SyncFolderItems", "GetItem", "UpdateItem":
						kinds[op] += c
					default:
						kinds["other"] += c
					}
				}
				for _, k := range []string{"SyncFolderItems", "GetItem", "UpdateItem", "other"} {
					b.ReportMetric(float64(kinds[k])/n, k+"/msg")
				}
				b.ReportMetric(float64(total)/n, "requests/msg")
				b.ReportMetric(n/elapsed.Seconds(), "msgs/s")
				b.ReportMetric(0, "ns/op")
			}
		})
	}
}
