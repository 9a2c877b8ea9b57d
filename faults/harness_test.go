// Package faults proves the delivery promise under faults: every message
// that reaches a polled folder produces at least one event with a stable
// id, and nothing is marked read, moved or deleted before JetStream
// acknowledged its event. Each test runs real servers on loopback (NATS
// with JetStream, the Microsoft 365 simulator) and records a row of the
// table printed at the end of the run.
package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/internal/logtest"
	"github.com/mailpoller/mailpoller/publish"
	"github.com/mailpoller/mailpoller/sim"
	"github.com/mailpoller/mailpoller/sim/simtest"
)

// row is one line of the summary table.
type row struct {
	scenario                                               string
	sent, events, distinct, flaggedEarly, duplicates, lost int
}

var (
	tableMu sync.Mutex
	table   []row
)

func TestMain(m *testing.M) {
	code := m.Run()
	tableMu.Lock()
	defer tableMu.Unlock()
	if len(table) > 0 {
		fmt.Printf("\n%-38s %7s %7s %9s %14s %11s %5s\n", "scenario", "sent", "events", "distinct", "flagged-early", "duplicates", "lost")
		for _, r := range table {
			early := fmt.Sprint(r.flaggedEarly)
			if r.flaggedEarly < 0 {
				early = "n/a" // not observable on that server
			}
			fmt.Printf("%-38s %7d %7d %9d %14s %11d %5d\n", r.scenario, r.sent, r.events, r.distinct, early, r.duplicates, r.lost)
		}
		fmt.Println()
	}
	os.Exit(code)
}

const (
	tenant = "11111111-1111-1111-1111-111111111111"
	appA   = "22222222-2222-2222-2222-222222222222"
	appB   = "33333333-3333-3333-3333-333333333333"
	secret = "fault-suite-secret-0123456789"
)

// natsServer is a JetStream server the test can stop and start again on
// the same port and store.
type natsServer struct {
	t    *testing.T
	port int
	dir  string
	srv  *server.Server
}

func startNATS(t *testing.T) *natsServer {
	t.Helper()
	// Port -1: the server picks a free port itself (no race with other test
	// binaries picking "free" ports); a restart reuses that port.
	n := &natsServer{t: t, port: -1, dir: t.TempDir()}
	n.start()
	n.port = n.srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(n.stop)
	return n
}

func (n *natsServer) start() {
	n.t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: n.port, JetStream: true, StoreDir: n.dir, NoLog: true, NoSigs: true})
	if err != nil {
		n.t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		n.t.Fatal("NATS did not start")
	}
	n.srv = srv
}

func (n *natsServer) stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// env is a simulator with mailboxes, the NATS server, and a watcher that
// records, for every action on the mail server, the stream's last
// sequence at that moment.
type env struct {
	t     *testing.T
	sim   *sim.Sim
	nats  *natsServer
	nc    *nats.Conn
	js    jetstream.JetStream
	boxes []string
	uidv  map[string]uint32
	// protocol is the accounts' protocol: "" (IMAP) or "graph"; set it
	// before delivering.
	protocol string

	mu       sync.Mutex
	actions  []action
	sent     map[string]bool   // mailbox/server_id of every message delivered
	graphIDs map[string]string // Graph id by mailbox/UID
}

type action struct {
	key     string // mailbox/server_id
	lastSeq uint64 // stream's last sequence when the server acted; 0 if NATS was unreachable
}

func newEnv(t *testing.T, boxes ...string) *env {
	t.Helper()
	seed := &sim.Seed{
		Tenants: []sim.Tenant{{ID: tenant, Domain: "contoso.test"}},
		Apps: []sim.App{
			{Tenant: tenant, ClientID: appA, Secret: secret, Roles: []string{"IMAP.AccessAsApp"}, GraphRoles: []string{"Mail.ReadWrite"}, Mailboxes: []string{"*"}},
			{Tenant: tenant, ClientID: appB, Secret: secret, Roles: []string{"IMAP.AccessAsApp"}, Mailboxes: []string{"*"}},
		},
	}
	for _, b := range boxes {
		seed.Mailboxes = append(seed.Mailboxes, sim.MailboxSeed{Address: b})
	}
	s := simtest.Start(t, seed)
	e := &env{t: t, sim: s, nats: startNATS(t), boxes: boxes, uidv: map[string]uint32{}, sent: map[string]bool{}, graphIDs: map[string]string{}}
	for _, b := range boxes {
		fi, _ := s.Store().Folder(b, "INBOX")
		e.uidv[b] = fi.UIDValidity
	}
	e.connect()
	s.Store().OnAction(func(address, folder string, uid uint32, _ string) {
		e.mu.Lock()
		key := e.key(address, uid)
		e.mu.Unlock()
		// Ask the stream how far it is. While NATS is away keep asking (the
		// acting mailbox waits, so its own publish cannot slip in between):
		// an action before its PubAck shows as lastSeq < the event's seq.
		var last uint64
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, err := e.js.Stream(ctx, "MAIL")
			cancel()
			if err == nil {
				last = st.CachedInfo().State.LastSeq
				break
			}
			time.Sleep(50 * time.Millisecond) // retrying a lookup under a deadline
		}
		e.mu.Lock()
		e.actions = append(e.actions, action{key, last})
		e.mu.Unlock()
	})
	return e
}

func (e *env) connect() {
	nc, err := nats.Connect(e.nats.url(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	e.nc = nc
	e.js, _ = jetstream.New(nc)
}

// deliver puts n generated messages into each mailbox.
func (e *env) deliver(n int) {
	for _, b := range e.boxes {
		e.deliverPoison(b, n, 0)
	}
}

// deliverPoison delivers n messages to box and expects an event of each
// but the poison-th (0: none), whose UID it returns; the server refuses
// to FETCH that one, every time.
func (e *env) deliverPoison(box string, n, poison int) uint32 {
	var uid uint32
	for i := 1; i <= n; i++ {
		m, err := e.sim.Store().Deliver(box, "INBOX", sim.Generate(box, i), time.Now())
		if err != nil {
			e.t.Fatal(err)
		}
		if i == poison {
			uid = m.UID
			e.sim.RefuseFetch(box, uid)
			continue
		}
		e.mu.Lock()
		e.graphIDs[fmt.Sprintf("%s/%d", box, m.UID)] = m.GraphID()
		e.sent[e.key(box, m.UID)] = true
		e.mu.Unlock()
	}
	return uid
}

// config is the YAML a user would write, loaded through the real loader.
func (e *env) config(extra string) *config.Config {
	e.t.Helper()
	cfg, err := config.Parse([]byte(e.yaml(extra)), "faults.yaml")
	if err != nil {
		e.t.Fatalf("config: %v", err)
	}
	return cfg
}

// key names a message as its events do (mailbox/server_id): UIDVALIDITY
// and UID over IMAP, the Graph id over Graph. e.mu must be held.
func (e *env) key(box string, uid uint32) string {
	if e.protocol == "graph" {
		return box + "/" + e.graphIDs[fmt.Sprintf("%s/%d", box, uid)]
	}
	return fmt.Sprintf("%s/%d:%d", box, e.uidv[box], uid)
}

func (e *env) yaml(extra string) string {
	ep := e.sim.Endpoints()
	server, protocol := ep.IMAP, "imap"
	if e.protocol == "graph" {
		server, protocol = ep.Graph, "graph"
	}
	var users []string
	for _, b := range e.boxes[1:] {
		users = append(users, b)
	}
	return fmt.Sprintf(`nats: {url: %q}
http: {listen: ""}
log: {level: debug}
defaults: {poll_interval: 1s, start_from: all}
accounts:
  - name: support
    protocol: %s
    tenant_id: %s
    client_id: %s
    client_secret: %s
    authority: %s
    server: %s
    tls: {ca_file: %s}
    mailbox: %s
    additional_users: [%s]
%s`, e.nats.url(), protocol, tenant, appA, secret, ep.Authority, server, ep.CAFile, e.boxes[0], strings.Join(users, ", "), extra)
}

// streamCount is the number of events stored (dead letters excluded).
func (e *env) streamCount() int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := e.js.Stream(ctx, "MAIL")
	if err != nil {
		return -1
	}
	return int(st.CachedInfo().State.Msgs)
}

// verify reads the stream and records the scenario's row; it fails the
// test on a lost message or an action before its event.
func (e *env) verify(name string, wantAllActed bool) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := e.js.OrderedConsumer(ctx, "MAIL", jetstream.OrderedConsumerConfig{FilterSubjects: []string{"mail.inbound.>"}})
	if err != nil {
		e.t.Fatal(err)
	}
	total := e.streamCount()
	seqOf := map[string]uint64{}
	ids := map[string]bool{}
	events := 0
	for i := 0; i < total; i++ {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			e.t.Fatalf("read event %d/%d: %v", i+1, total, err)
		}
		md, _ := m.Metadata()
		var ev publish.Event
		if json.Unmarshal(m.Data(), &ev) != nil || ev.Type != publish.EventType {
			continue
		}
		events++
		ids[ev.ID] = true
		key := ev.Data.Mailbox + "/" + ev.Data.ServerID
		if _, ok := seqOf[key]; !ok {
			seqOf[key] = md.Sequence.Stream
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	r := row{scenario: name, sent: len(e.sent), events: events, distinct: len(ids), duplicates: events - len(seqOf)}
	for k := range e.sent {
		if _, ok := seqOf[k]; !ok {
			r.lost++
			e.t.Errorf("%s: message %s has no event", name, k)
		}
	}
	acted := map[string]bool{}
	for _, a := range e.actions {
		acted[a.key] = true
		if seq, ok := seqOf[a.key]; !ok || a.lastSeq < seq {
			r.flaggedEarly++
			e.t.Errorf("%s: %s was acted on when the stream ended at %d, its event is %d", name, a.key, a.lastSeq, seqOf[a.key])
		}
	}
	if wantAllActed {
		for k := range e.sent {
			if !acted[k] {
				e.t.Errorf("%s: %s was never marked read", name, k)
			}
		}
	}
	tableMu.Lock()
	table = append(table, r)
	tableMu.Unlock()
}

func debugLog(buf *logtest.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// noSecrets fails if the secret or a token the simulator issued shows in
// out.
func (e *env) noSecrets(out string) {
	e.t.Helper()
	if strings.Contains(out, secret) {
		e.t.Error("the client secret appears in the output")
	}
	if part := e.sim.LeakedToken(out); part != "" {
		e.t.Errorf("a token appears in the output: %q", part)
	}
}
