package poller

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/internal/logtest"
	"github.com/mailpoller/mailpoller/internal/natstest"
	"github.com/mailpoller/mailpoller/internal/wait"
	"github.com/mailpoller/mailpoller/publish"
	"github.com/mailpoller/mailpoller/sim"
	"github.com/mailpoller/mailpoller/sim/simtest"
)

// TestLeasesThreeNodeCluster: three pollers share one config and a
// three-node JetStream cluster. Each mailbox is polled by one poller at a
// time (checked on the server: no command from an older session once a
// newer one has logged in); when a poller dies without releasing, and a
// NATS node dies, the others take over and nothing is lost.
//
// It takes 15–45 s; -short skips it.
func TestLeasesThreeNodeCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("slow cluster test (-short)")
	}
	srvs, urls := natstest.Cluster(t, 3)
	const n = 12
	seed := &sim.Seed{
		Tenants: []sim.Tenant{{ID: testTenant, Domain: "contoso.test"}},
		Apps:    []sim.App{{Tenant: testTenant, ClientID: testClient, Secret: testSecret, Roles: []string{"IMAP.AccessAsApp"}, Mailboxes: []string{"*"}}},
	}
	var boxes []string
	for i := range n {
		boxes = append(boxes, fmt.Sprintf("box%02d@contoso.test", i))
		seed.Mailboxes = append(seed.Mailboxes, sim.MailboxSeed{Address: boxes[i]})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := simtest.Start(t, seed)
	ep := s.Endpoints()
	t.Setenv("TEST_CLIENT_SECRET", testSecret)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`nats: {url: %q}
defaults: {start_from: all, poll_interval: 1s}
accounts:
  - name: shared
    tenant_id: %s
    client_id: %s
    client_secret: ${TEST_CLIENT_SECRET}
    authority: %s
    server: %s
    tls: {ca_file: %s}
    mailbox: %s
    additional_users: [%s]
`, strings.Join(urls, ","), testTenant, testClient, ep.Authority, ep.IMAP, ep.CAFile, boxes[0], strings.Join(boxes[1:], ", "))), "shared.yaml")
	if err != nil {
		t.Fatal(err)
	}

	type instance struct {
		name   string
		logs   *logtest.Buffer
		nc     *publish.Conn
		mon    *Monitor
		cancel context.CancelFunc
		done   chan struct{}
	}
	start := func(name, url string) *instance {
		c := cfg.NATS
		c.URL = url
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		defer ccancel()
		nc, err := publish.Connect(cctx, c, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ictx, icancel := context.WithCancel(ctx)
		in := &instance{name: name, logs: &logtest.Buffer{}, nc: nc, mon: NewMonitor(), cancel: icancel, done: make(chan struct{})}
		go func() {
			defer close(in.done)
			Run(ictx, Options{Config: cfg, NATS: nc, Monitor: in.mon, Instance: name, LeaseTTL: 3 * time.Second, Logger: debugLogger(in.logs)})
		}()
		return in
	}
	// On failure, say which mailboxes lack events and what each poller
	// was doing.
	var perBox sync.Map // mailbox -> *atomic.Int32 delivered
	var all []*instance
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		if nc, err := nats.Connect(strings.Join(urls[:2], ",")); err == nil {
			js, _ := nc.JetStream()
			for _, b := range boxes {
				subj := publish.Subject("mail.inbound", "shared", b)
				info, err := js.StreamInfo("MAIL", &nats.StreamInfoRequest{SubjectsFilter: subj})
				have := uint64(0)
				if err == nil {
					have = info.State.Subjects[subj]
				}
				want := int32(0)
				if v, ok := perBox.Load(b); ok {
					want = v.(*atomic.Int32).Load()
				}
				t.Logf("%s: %d delivered, %d events (err %v)", b, want, have, err)
			}
			nc.Close()
		}
		for _, in := range all {
			for _, st := range in.mon.Snapshot() {
				t.Logf("%s %s: state %s, published %d, error %q", in.name, st.Mailbox, st.State, st.Published, st.LastError)
			}
			lines := strings.Split(in.logs.String(), "\n")
			t.Logf("%s: last log lines:\n%s", in.name, strings.Join(lines[max(0, len(lines)-60):], "\n"))
		}
	})
	held := func(in *instance) int {
		k := 0
		for _, st := range in.mon.Snapshot() {
			if st.State == StateCaughtUp || st.State == StateConnected {
				k++
			}
		}
		return k
	}
	ins := []*instance{start("p1", urls[0]), start("p2", urls[1]), start("p3", urls[2])}
	all = append(all, ins...)
	defer func() {
		for _, in := range ins[1:] {
			in.cancel()
			<-in.done
			in.nc.Close()
		}
	}()
	wait.For(t, 60*time.Second, "12 mailboxes split about evenly", func() bool {
		total := 0
		for _, in := range ins {
			h := held(in)
			if h > 5 {
				return false
			}
			total += h
		}
		return total == n
	})

	// Events, checkpoints, leases and blobs are kept in three copies, so
	// that they survive a node.
	js, _ := ins[1].nc.NATS().JetStream()
	for _, stream := range []string{"MAIL", "KV_mailpoller-state", "KV_mailpoller-leases", "OBJ_mailpoller-blobs"} {
		info, err := js.StreamInfo(stream)
		if err != nil || info.Config.Replicas != 3 {
			t.Fatalf("stream %s: %v replicas, want 3 (%v)", stream, info.Config.Replicas, err)
		}
	}

	var delivered atomic.Int32
	deliverCtx, stopDeliver := context.WithCancel(ctx)
	var delivering sync.WaitGroup
	delivering.Add(1)
	go func() {
		defer delivering.Done()
		for i := 0; sleep(deliverCtx, 20*time.Millisecond); i++ {
			b := boxes[rand.N(n)]
			s.Store().Deliver(b, "INBOX", sim.Generate(b, i), time.Now())
			delivered.Add(1)
			v, _ := perBox.LoadOrStore(b, new(atomic.Int32))
			v.(*atomic.Int32).Add(1)
		}
	}()

	// p1 dies without releasing its leases: its NATS connection goes first.
	dead := ins[0]
	dead.nc.NATS().Close()
	dead.cancel()
	<-dead.done
	killedAt := time.Now()
	wait.For(t, 30*time.Second, "p2 and p3 hold all 12", func() bool { return held(ins[1])+held(ins[2]) == n })
	takeover := time.Since(killedAt)

	// A fourth poller joins: the 12 mailboxes spread over p2, p3 and p4.
	ins = append(ins, start("p4", urls[1]))
	all = append(all, ins[3])
	wait.For(t, 60*time.Second, "rebalanced over p2, p3, p4", func() bool {
		a, b, c := held(ins[1]), held(ins[2]), held(ins[3])
		return a+b+c == n && a <= 5 && b <= 5 && c <= 5 && c > 0
	})
	// Then a NATS node dies (p3 was connected to it) while mail keeps coming.
	before := delivered.Load()
	srvs[2].Shutdown()
	wait.For(t, 60*time.Second, "mail delivered after the node died", func() bool { return delivered.Load() > before+50 })

	stopDeliver()
	delivering.Wait()
	want := int(delivered.Load())
	check, err := nats.Connect(strings.Join(urls[:2], ","))
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close()
	wait.For(t, 60*time.Second, fmt.Sprintf("%d events", want), func() bool {
		js, _ := check.JetStream()
		info, err := js.StreamInfo("MAIL")
		return err == nil && int(info.State.Msgs) >= want
	})
	// Checked on the server: no IMAP command from a session after a newer
	// one had logged in to the same mailbox.
	for _, b := range boxes {
		if k := s.StaleCommands(b); k > 0 {
			t.Errorf("%s: %d commands from an older session while a newer one was open: two pollers at once", b, k)
		}
	}
	t.Logf("%d messages delivered during the run, all published; takeover after p1 died: %s (lease TTL 3s); a NATS node died and a fourth poller joined", want, takeover.Round(100*time.Millisecond))
}
