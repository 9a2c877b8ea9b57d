// Package bench measures mailpoller against a raw IMAP fetch and mbsync on
// a real Dovecot (XOAUTH2 over TLS), its push latency and its footprint at
// 1,000 idle mailboxes on the simulator. Run, for the table of RESULTS.md:
//
//	go test -run xxx -bench Throughput -benchtime 1x ./bench
//
// Plain `go test ./...` runs no benchmark. Results of a run are kept in
// RESULTS.md.
package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/imap"
	"github.com/mailpoller/mailpoller/internal/dovecottest"
	"github.com/mailpoller/mailpoller/internal/relay"
	"github.com/mailpoller/mailpoller/internal/wait"
	"github.com/mailpoller/mailpoller/poller"
	"github.com/mailpoller/mailpoller/publish"
	"github.com/mailpoller/mailpoller/sim"
	"github.com/mailpoller/mailpoller/sim/simtest"
)

const (
	tenant = "11111111-1111-1111-1111-111111111111"
	client = "22222222-2222-2222-2222-222222222222"
	secret = "bench-secret"
)

// mix makes message i of the mix: 70% 5–20 KB, 25% with a
// 100–500 KB attachment, 5% 2–5 MB.
func mix(r *rand.Rand, i int) []byte {
	var size int
	switch p := r.IntN(100); {
	case p < 70:
		size = 5<<10 + r.IntN(15<<10)
	case p < 95:
		size = 100<<10 + r.IntN(400<<10)
	default:
		size = 2<<20 + r.IntN(3<<20)
	}
	data := make([]byte, size*3/4)
	for j := range data {
		data[j] = byte(r.Uint32())
	}
	enc := base64.StdEncoding.EncodeToString(data)
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Sender <s%d@example.net>\r\nTo: bench@contoso.test\r\nSubject: bench %d\r\nMessage-ID: <b%d@example.net>\r\n"+
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nmessage %d\r\n"+
		"--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=a.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n", i, i, i, i)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--B--\r\n")
	return b.Bytes()
}

type fixture struct {
	srv   *dovecottest.Server
	sim   *sim.Sim
	bytes int64
	n     int
	yaml  string // the last config written by config()
	out   string // where runs write (JetStream store, Maildir)
	addr  string // where the rows connect: Dovecot, or a latency relay in front of it ("": Dovecot)
}

// target is where the rows connect.
func (f *fixture) target() string {
	if f.addr != "" {
		return f.addr
	}
	return f.srv.Addr
}

// fresh empties the output of earlier runs, flushes the page cache's
// dirty pages to disk so that no run pays for another's writeback, and
// returns a new empty directory for the next run.
func (f *fixture) fresh(b *testing.B) string {
	b.Helper()
	if err := os.RemoveAll(f.out); err != nil {
		b.Fatal(err)
	}
	syscall.Sync()
	dir := filepath.Join(f.out, "run")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	return dir
}

func setup(b *testing.B, n int) *fixture {
	b.Helper()
	s := startSim(b)
	srv := dovecottest.Start(b, dovecottest.Options{Users: []string{"bench@contoso.test"}, Introspect: func(tok string) (string, bool) {
		_, err := s.Verify(tok)
		return "app@contoso.test", err == nil
	}})
	f := &fixture{srv: srv, sim: s, n: n, out: filepath.Join(b.TempDir(), "out")}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < n; i++ {
		raw := mix(r, i)
		f.bytes += int64(len(raw))
		srv.Append(b, "bench@contoso.test", "INBOX", raw)
	}
	return f
}

// BenchmarkDovecot runs, in this process and on the same Dovecot mailbox,
// a raw go-imap UID FETCH 1:* BODY.PEEK[] that discards the bytes, the same
// fetch storing each message in the object store (the floor of keeping
// the .eml), and mailpoller's poller.Run once: rows to profile
// (-cpuprofile) and to split the work; BenchmarkThroughput is the table.
func BenchmarkDovecot(b *testing.B) {
	n := 300
	if v := os.Getenv("BENCH_N"); v != "" {
		fmt.Sscan(v, &n)
	}
	f := setup(b, n)
	if v := os.Getenv("BENCH_ONE_WAY_MS"); v != "" {
		// Every row through a relay delaying each direction (BENCH_ONE_WAY_MS=10: a 20 ms round trip).
		var ms int
		fmt.Sscan(v, &ms)
		r, err := relay.StartDelayed(f.srv.Addr, time.Duration(ms)*time.Millisecond)
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		f.addr = r.Addr()
	}
	b.Run("raw-fetch", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			f.fresh(b)
			b.StartTimer()
			f.rawFetch(b, func(lit goimap.LiteralReader) { io.Copy(io.Discard, lit) })
		}
		b.ReportMetric(float64(f.n)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		b.ReportMetric(float64(f.bytes)*float64(b.N)/b.Elapsed().Seconds()/1e6, "MB/s")
	})
	// The floor of any design that keeps each message's .eml: the raw
	// fetch, and every message stored whole in the object store (four
	// at a time), nothing parsed.
	b.Run("raw-fetch+store", func(b *testing.B) {
		cpu := cpuSeconds()
		for b.Loop() {
			b.StopTimer()
			nc, err := publish.Connect(context.Background(), f.config(b).NATS, discard())
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			var wg sync.WaitGroup
			sem := make(chan struct{}, 4)
			f.rawFetch(b, func(lit goimap.LiteralReader) {
				raw := make([]byte, lit.Size())
				io.ReadFull(lit, raw)
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					if _, err := nc.PutBlob(context.Background(), raw); err != nil {
						b.Error(err)
					}
				})
			})
			wg.Wait()
			b.StopTimer()
			nc.Close()
			b.StartTimer()
		}
		b.ReportMetric((cpuSeconds()-cpu)/float64(b.N), "cpu-s")
		b.ReportMetric(float64(f.n)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		b.ReportMetric(float64(f.bytes)*float64(b.N)/b.Elapsed().Seconds()/1e6, "MB/s")
	})
	b.Run("mailpoller", func(b *testing.B) {
		cpu, busy := cpuSeconds(), 0.0
		for b.Loop() {
			b.StopTimer()
			cfg := f.config(b)
			ctx := context.Background()
			nc, err := publish.Connect(ctx, cfg.NATS, discard())
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			busy -= machineBusy()
			res := poller.Run(ctx, poller.Options{Config: cfg, NATS: nc, Once: true, Logger: discard()})
			busy += machineBusy()
			b.StopTimer()
			if res[0].Err != nil || res[0].Published != f.n {
				b.Fatalf("published %d of %d: %v", res[0].Published, f.n, res[0].Err)
			}
			nc.Close()
			b.StartTimer()
		}
		b.ReportMetric((cpuSeconds()-cpu)/float64(b.N), "cpu-s")
		b.ReportMetric(busy/b.Elapsed().Seconds()/float64(runtime.NumCPU()), "machine-busy")
		b.ReportMetric(float64(f.n)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		b.ReportMetric(float64(f.bytes)*float64(b.N)/b.Elapsed().Seconds()/1e6, "MB/s")
	})
}

// rawFetch logs in, and hands each message's BODY[] literal of a
// UID FETCH 1:* BODY.PEEK[] to each.
func (f *fixture) rawFetch(b *testing.B, each func(goimap.LiteralReader)) {
	tok, _ := imapToken(b, f)
	got, err := rawFetch(f.target(), f.srv.CAPool, tok, each)
	if err != nil || got != f.n {
		b.Fatalf("fetched %d of %d: %v", got, f.n, err)
	}
}

// rawFetch is (a): log in with XOAUTH2, UID FETCH 1:* BODY.PEEK[], hand
// each literal to each; it returns how many messages came.
func rawFetch(addr string, roots *x509.CertPool, token string, each func(goimap.LiteralReader)) (int, error) {
	c, err := imapclient.DialTLS(addr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: roots}})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := c.Authenticate(imap.NewXOAUTH2Client("bench@contoso.test", token)); err != nil {
		return 0, err
	}
	if _, err := c.Select("INBOX", &goimap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		return 0, err
	}
	var all goimap.UIDSet
	all.AddRange(1, 0)
	cmd := c.Fetch(all, &goimap.FetchOptions{UID: true, BodySection: []*goimap.FetchItemBodySection{{Peek: true}}})
	got := 0
	for m := cmd.Next(); m != nil; m = cmd.Next() {
		for item := m.Next(); item != nil; item = m.Next() {
			if bs, ok := item.(imapclient.FetchItemDataBodySection); ok {
				each(bs.Literal)
			}
		}
		got++
	}
	return got, cmd.Close()
}

// config is the bench's mailpoller config, storing into a fresh
// directory (see fresh).
func (f *fixture) config(b *testing.B) *config.Config {
	return f.configWith(b, "")
}

// configWith is config with more mailbox defaults (e.g. "store_raw: never").
func (f *fixture) configWith(b *testing.B, more string) *config.Config {
	store := f.fresh(b)
	bundle := filepath.Join(b.TempDir(), "ca.pem")
	ca, _ := os.ReadFile(f.srv.CAFile)
	os.WriteFile(bundle, append(ca, f.sim.CAPEM()...), 0o600)
	defaults := "{start_from: all, after_read: none}"
	if more != "" {
		defaults = "{start_from: all, after_read: none, " + more + "}"
	}
	f.yaml = benchYAML(f.sim, f.target(), bundle, store, defaults, "bench@contoso.test")
	return parse(b, f.yaml)
}

// BenchmarkPushLatency measures new mail → PubAck on the simulator with
// push (IMAP IDLE; EWS streaming notifications) and a 60 s poll interval:
// one message delivered at a time, the time until its event is in the
// stream.
func BenchmarkPushLatency(b *testing.B) {
	for _, protocol := range []string{"imap", "ews"} {
		b.Run(protocol, func(b *testing.B) {
			s := startSim(b, "push@contoso.test")
			ep := s.Endpoints()
			server := ep.IMAP
			if protocol == "ews" {
				server = ep.EWS
			}
			yaml := benchYAML(s, server, ep.CAFile, b.TempDir(), "{start_from: all, poll_interval: 60s}", "push@contoso.test")
			cfg := parse(b, strings.Replace(yaml, "  - name: bench\n", "  - name: bench\n    protocol: "+protocol+"\n", 1))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			nc, err := publish.Connect(ctx, cfg.NATS, discard())
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			mon := poller.NewMonitor()
			go poller.Run(ctx, poller.Options{Config: cfg, NATS: nc, Logger: discard(), Monitor: mon})
			waitState(b, mon, poller.StateCaughtUp)
			cons, _ := nc.JetStream().OrderedConsumer(ctx, nc.Stream(), jetstream.OrderedConsumerConfig{})
			var lat []time.Duration
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				s.Store().Deliver("push@contoso.test", "INBOX", sim.Generate("push@contoso.test", i), start)
				if _, err := cons.Next(jetstream.FetchMaxWait(30 * time.Second)); err != nil {
					b.Fatalf("no event within 30s: %v", err)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

func waitState(b *testing.B, mon *poller.Monitor, state string) {
	wait.For(b, 30*time.Second, "mailbox "+state, func() bool {
		st := mon.Snapshot()
		return len(st) > 0 && st[0].State == state
	})
}

// startSim runs the simulator with the bench's app, allowed on every
// mailbox, and the given mailboxes.
func startSim(b *testing.B, mailboxes ...string) *sim.Sim {
	b.Helper()
	seed := &sim.Seed{Tenants: []sim.Tenant{{ID: tenant, Domain: "contoso.test"}},
		Apps: []sim.App{{Tenant: tenant, ClientID: client, Secret: secret, Roles: []string{"IMAP.AccessAsApp", "full_access_as_app"}, GraphRoles: []string{"Mail.ReadWrite"}, Mailboxes: []string{"*"}}}}
	for _, m := range mailboxes {
		seed.Mailboxes = append(seed.Mailboxes, sim.MailboxSeed{Address: m})
	}
	return simtest.Start(b, seed)
}

// benchYAML is a config with the embedded NATS storing in store and one
// IMAP account of the bench's app on server: boxes[0] and the others as
// additional users.
func benchYAML(s *sim.Sim, server, caFile, store, defaults string, boxes ...string) string {
	extra := ""
	if len(boxes) > 1 {
		extra = "    additional_users: [" + strings.Join(boxes[1:], ", ") + "]\n"
	}
	return fmt.Sprintf(`nats: {embedded: {listen: "127.0.0.1:0", store_dir: %q}}
http: {listen: ""}
log: {level: warn}
defaults: %s
accounts:
  - name: bench
    tenant_id: %s
    client_id: %s
    client_secret: %s
    authority: %s
    server: %s
    tls: {ca_file: %s}
    mailbox: %s
`, store, defaults, tenant, client, secret, s.Endpoints().Authority, server, caFile, boxes[0]) + extra
}

// parse loads a config the way the daemon does.
func parse(b *testing.B, yaml string) *config.Config {
	b.Helper()
	cfg, err := config.Parse([]byte(yaml), "bench.yaml")
	if err != nil {
		b.Fatal(err)
	}
	return cfg
}

func discard() *slogLogger { return newDiscard() }

// BenchmarkIdleMailboxes: 1,000 mailboxes of one app on the simulator,
// each with its IMAP IDLE connection: the mailpoller binary's RSS once all
// have caught up ("process"), and the Go heap held per mailbox measured in
// process ("heap", an upper bound: the simulator's sessions live in the
// same process).
func BenchmarkIdleMailboxes(b *testing.B) {
	b.Run("process", benchIdleProcess)
	b.Run("heap", benchIdleHeap)
}

func benchIdleHeap(b *testing.B) {
	const n = 1000
	var boxes []string
	for i := range n {
		boxes = append(boxes, fmt.Sprintf("u%04d@contoso.test", i))
	}
	s := startSim(b, boxes...)
	ep := s.Endpoints()
	cfg := parse(b, benchYAML(s, ep.IMAP, ep.CAFile, b.TempDir(), "{start_from: all, poll_interval: 60s}", boxes...))
	for b.Loop() {
		ctx, cancel := context.WithCancel(context.Background())
		nc, err := publish.Connect(ctx, cfg.NATS, discard())
		if err != nil {
			b.Fatal(err)
		}
		var before runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		mon := poller.NewMonitor()
		done := make(chan struct{})
		go func() {
			defer close(done)
			poller.Run(ctx, poller.Options{Config: cfg, NATS: nc, Logger: discard(), Monitor: mon})
		}()
		deadline := time.Now().Add(120 * time.Second)
		for {
			up := 0
			for _, st := range mon.Snapshot() {
				if st.State == poller.StateCaughtUp {
					up++
				}
			}
			if up == n {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d mailboxes caught up after 120s", up, n)
			}
			time.Sleep(50 * time.Millisecond) // polling under a deadline
		}
		var after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/n/1024, "KiB-heap/mailbox")
		b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
		b.ReportMetric(float64(s.TokenRequests(client)), "token-requests")
		cancel()
		<-done
		nc.Close()
	}
}

func benchIdleProcess(b *testing.B) {
	const n = 1000
	var boxes []string
	for i := range n {
		boxes = append(boxes, fmt.Sprintf("u%04d@contoso.test", i))
	}
	s := startSim(b, boxes...)
	ep := s.Endpoints()
	bin := filepath.Join(b.TempDir(), "mailpoller")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/mailpoller/mailpoller/cmd/mailpoller").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	yaml := benchYAML(s, ep.IMAP, ep.CAFile, b.TempDir(), "{start_from: all, poll_interval: 60s}", boxes...)
	yaml = strings.Replace(yaml, `http: {listen: ""}`, fmt.Sprintf("http: {listen: %q}", addr), 1)
	path := filepath.Join(b.TempDir(), "big.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		var out bytes.Buffer
		cmd := exec.Command(bin, "run", "-c", path)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		deadline := start.Add(120 * time.Second)
		for up := 0; up < n; {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				b.Fatalf("%d of %d mailboxes caught up after 120s\n%s", up, n, out.String())
			}
			time.Sleep(100 * time.Millisecond) // polling /status under a deadline
			up = caughtUp(addr)
		}
		caught := time.Since(start)
		rss := vmRSS(cmd.Process.Pid)
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			b.Fatalf("mailpoller run: %v\n%s", err, out.String())
		}
		b.ReportMetric(float64(rss)/(1<<20), "RSS-MiB")
		b.ReportMetric(float64(rss)/n/1024, "RSS-KiB/mailbox")
		b.ReportMetric(caught.Seconds(), "s-to-caught-up")
		b.ReportMetric(float64(s.TokenRequests(client)), "token-requests")
	}
}

// caughtUp counts the mailboxes in state "caught up" on a running
// mailpoller's /status.
func caughtUp(addr string) int {
	resp, err := http.Get("http://" + addr + "/status")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var st struct {
		Mailboxes []poller.MailboxStatus `json:"mailboxes"`
	}
	json.NewDecoder(resp.Body).Decode(&st)
	k := 0
	for _, m := range st.Mailboxes {
		if m.State == poller.StateCaughtUp {
			k++
		}
	}
	return k
}

// vmRSS is a process's resident set size, from /proc.
func vmRSS(pid int) int64 {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb)
			return kb * 1024
		}
	}
	return 0
}
