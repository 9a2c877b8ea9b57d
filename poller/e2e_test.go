package poller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/internal/logtest"
	"github.com/mailpoller/mailpoller/message"
	"github.com/mailpoller/mailpoller/publish"
	"github.com/mailpoller/mailpoller/sim"
	"github.com/mailpoller/mailpoller/sim/simtest"
)

const (
	testTenant = "11111111-1111-1111-1111-111111111111"
	testClient = "22222222-2222-2222-2222-222222222222"
	testSecret = "s3cr3t-Value~with.chars_0123456789"
)

// simEnv is a simulator with one tenant, one app and three mailboxes.
type simEnv struct {
	sim   *sim.Sim
	ep    sim.Endpoints
	boxes []string
}

func newSimEnv(t *testing.T, roles ...string) *simEnv {
	t.Helper()
	if len(roles) == 0 {
		roles = []string{"IMAP.AccessAsApp", "full_access_as_app"}
	}
	boxes := []string{"support@contoso.test", "billing@contoso.test", "hr@contoso.test"}
	seed := &sim.Seed{
		Tenants: []sim.Tenant{{ID: testTenant, Domain: "contoso.test"}},
		Apps: []sim.App{{Tenant: testTenant, ClientID: testClient, Secret: testSecret, Roles: roles,
			GraphRoles: []string{"Mail.ReadWrite"}, Mailboxes: []string{"*"}}},
	}
	for _, b := range boxes {
		seed.Mailboxes = append(seed.Mailboxes, sim.MailboxSeed{Address: b, Folders: []string{"Processed"}})
	}
	return startSimEnv(t, seed, boxes)
}

// startSimEnv starts the simulator from seed for the test; boxes are the
// account's mailboxes, the primary first.
func startSimEnv(t *testing.T, seed *sim.Seed, boxes []string) *simEnv {
	t.Helper()
	s := simtest.Start(t, seed)
	return &simEnv{sim: s, ep: s.Endpoints(), boxes: boxes}
}

// config builds a config through the real loader, as a user would write it.
func (e *simEnv) config(t *testing.T, protocol, extra string) *config.Config {
	t.Helper()
	server := e.ep.IMAP
	switch protocol {
	case "ews":
		server = e.ep.EWS
	case "graph":
		server = e.ep.Graph
	}
	t.Setenv("TEST_CLIENT_SECRET", testSecret)
	y := fmt.Sprintf(`nats: {url: "nats://127.0.0.1:1"}
http: {listen: ""}
defaults: {poll_interval: 1s, start_from: all}
accounts:
  - name: support
    protocol: %s
    tenant_id: %s
    client_id: %s
    client_secret: ${TEST_CLIENT_SECRET}
    authority: %s
    server: %s
    tls: {ca_file: %s}
    mailbox: %s
    additional_users: [%s]
%s`, protocol, testTenant, testClient, e.ep.Authority, server, e.ep.CAFile, e.boxes[0], e.boxes[1], extra)
	cfg, err := config.Parse([]byte(y), "test.yaml")
	if err != nil {
		t.Fatalf("config.Parse() = %v\n%s", err, y)
	}
	return cfg
}

// assertRead fails for every message of the two mailboxes deliverCorpus
// fills that is not \Seen (IMAP) or IsRead (EWS): after-read ran on it.
func (e *simEnv) assertRead(t *testing.T) {
	t.Helper()
	for _, box := range e.boxes[:2] {
		msgs, _ := e.sim.Store().Messages(box, "INBOX")
		for _, m := range msgs {
			if !m.Seen() {
				t.Errorf("%s UID %d (item %s) is not read after its event was published", box, m.UID, m.ItemID)
			}
		}
	}
}

// delivered is a message deliverCorpus delivered.
type delivered struct {
	box string
	msg *sim.Message
	raw []byte
}

// deliverCorpus delivers the corpus, in name order, alternately to the
// primary mailbox and the first additional one.
func (e *simEnv) deliverCorpus(t *testing.T) []delivered {
	t.Helper()
	mail := corpus(t)
	names := slices.Sorted(maps.Keys(mail))
	var out []delivered
	for i, n := range names {
		box := e.boxes[i%2]
		m, err := e.sim.Store().Deliver(box, "INBOX", mail[n], time.Now())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, delivered{box, m, mail[n]})
	}
	return out
}

// corpus returns the real-world-shaped test messages plus generated ones.
func corpus(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	files, _ := filepath.Glob("../testdata/corpus/*.eml")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// Servers store and return CRLF line endings (IMAP's wire format).
		b = bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
		out[filepath.Base(f)] = b
	}
	for i := 1; len(out) < 45; i++ {
		out[fmt.Sprintf("generated-%02d.eml", i)] = sim.Generate("support@contoso.test", i)
	}
	return out
}

// events reads every event of the stream.
func events(t *testing.T, nc *publish.Conn) []publish.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := nc.JetStream().Stream(ctx, nc.Stream())
	if err != nil {
		t.Fatal(err)
	}
	info, _ := st.Info(ctx)
	n := int(info.State.Msgs)
	var out []publish.Event
	if n == 0 {
		return nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{nc.Prefix() + ".>"}})
	if err != nil {
		t.Fatal(err)
	}
	for len(out) < n {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("read event %d of %d: %v", len(out)+1, n, err)
		}
		if strings.Contains(m.Subject(), ".deadletter.") {
			n--
			continue
		}
		validateEvent(t, m.Data())
		var ev publish.Event
		if err := json.Unmarshal(m.Data(), &ev); err != nil {
			t.Fatal(err)
		}
		if got := m.Headers().Get(jetstream.MsgIDHeader); got != ev.ID {
			t.Fatalf("Nats-Msg-Id %q != event id %q", got, ev.ID)
		}
		out = append(out, ev)
	}
	return out
}

var (
	schemaOnce sync.Once
	schema     *jsonschema.Schema
)

func validateEvent(t *testing.T, payload []byte) {
	t.Helper()
	schemaOnce.Do(func() {
		var err error
		if schema, err = jsonschema.NewCompiler().Compile("../configs/event.schema.json"); err != nil {
			t.Fatalf("compile event schema: %v", err)
		}
	})
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(v); err != nil {
		t.Fatalf("event does not match configs/event.schema.json: %v", err)
	}
}

// checkEvent compares an event's data with the source message parsed on its own.
func checkEvent(t *testing.T, ev publish.Event, raw []byte) {
	t.Helper()
	want := message.Parse(raw, nil)
	d := ev.Data
	if d.MessageID != want.MessageID || d.Subject != want.Subject || d.Size != want.Size {
		t.Errorf("event %s: message_id/subject/size = %q/%q/%d, want %q/%q/%d", ev.ID, d.MessageID, d.Subject, d.Size, want.MessageID, want.Subject, want.Size)
	}
	if d.Text != want.Text || d.HTML != want.HTML {
		t.Errorf("event %s (%s): bodies differ from the parsed source", ev.ID, want.Subject)
	}
	if !slices.Equal(d.From, want.From) || !slices.Equal(d.To, want.To) || !slices.Equal(d.Cc, want.Cc) {
		t.Errorf("event %s: addresses %v/%v differ from %v/%v", ev.ID, d.From, d.To, want.From, want.To)
	}
	if !slices.Equal(d.References, want.References) || !slices.Equal(d.InReplyTo, want.InReplyTo) || d.Auto != want.Auto {
		t.Errorf("event %s: threading or auto flags differ", ev.ID)
	}
	if len(d.Attachments) != len(want.Attachments) {
		t.Fatalf("event %s: %d attachments, want %d", ev.ID, len(d.Attachments), len(want.Attachments))
	}
	for i, a := range d.Attachments {
		w := want.Attachments[i]
		if a.SHA256 != w.SHA256 || a.Filename != w.Filename || a.Size != w.Size || a.ContentType != w.ContentType {
			t.Errorf("event %s attachment %d = %+v, want %+v", ev.ID, i, a, w)
		}
	}
	if ev.Subject != want.MessageID {
		t.Errorf("event subject %q, want %s (data.message_id's form)", ev.Subject, want.MessageID)
	}
}

func debugLogger(buf *logtest.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func runOnce(t *testing.T, cfg *config.Config, nc *publish.Conn, log *slog.Logger) []Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return Run(ctx, Options{Config: cfg, NATS: nc, Logger: log, Once: true})
}

// runAll is runOnce that fails the test if any mailbox failed.
func runAll(t *testing.T, cfg *config.Config, nc *publish.Conn, log *slog.Logger) {
	t.Helper()
	for _, r := range runOnce(t, cfg, nc, log) {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Mailbox.Address, r.Err)
		}
	}
}

// rerunIdle runs once more and checks that it publishes nothing: the
// stream still holds want events.
func rerunIdle(t *testing.T, cfg *config.Config, nc *publish.Conn, log *slog.Logger, want int) {
	t.Helper()
	for _, r := range runOnce(t, cfg, nc, log) {
		if r.Err != nil || r.Published != 0 {
			t.Fatalf("second run: %s published %d, err %v; want 0, nil", r.Mailbox.Address, r.Published, r.Err)
		}
	}
	if n := len(events(t, nc)); n != want {
		t.Fatalf("after the second run the stream has %d events, want %d", n, want)
	}
}

func TestIMAPEndToEnd(t *testing.T) {
	env := newSimEnv(t)
	byServerID := map[string][]byte{}
	for _, d := range env.deliverCorpus(t) {
		fi, _ := env.sim.Store().Folder(d.box, "INBOX")
		byServerID[fmt.Sprintf("%s/%d:%d", d.box, fi.UIDValidity, d.msg.UID)] = d.raw
	}
	cfg := env.config(t, "imap", "")
	nc := newNATS(t)
	var logs logtest.Buffer
	runAll(t, cfg, nc, debugLogger(&logs))
	evs := events(t, nc)
	if len(evs) != len(byServerID) {
		t.Fatalf("%d events, want %d (one per message)", len(evs), len(byServerID))
	}
	ids := map[string]bool{}
	for _, ev := range evs {
		raw, ok := byServerID[ev.Data.Mailbox+"/"+ev.Data.ServerID]
		if !ok {
			t.Fatalf("event for unknown message %s %s", ev.Data.Mailbox, ev.Data.ServerID)
		}
		checkEvent(t, ev, raw)
		if ids[ev.ID] {
			t.Fatalf("duplicate event id %s", ev.ID)
		}
		ids[ev.ID] = true
		b, err := nc.GetBlob(context.Background(), ev.Data.Raw)
		if err != nil || !bytes.Equal(b, raw) {
			t.Fatalf("raw blob of %s differs from the source: %v", ev.ID, err)
		}
	}
	env.assertRead(t)
	// A second run publishes nothing.
	rerunIdle(t, cfg, nc, debugLogger(&logs), len(byServerID))
	// One token request for the app, not one per mailbox.
	if n := env.sim.TokenRequests(testClient); n != 2 {
		t.Errorf("token requests = %d, want 2 (one per run, shared by both mailboxes)", n)
	}
	assertNoSecrets(t, logs.String(), env)
}

// assertNoSecrets fails if the client secret or any token shows in out.
func assertNoSecrets(t *testing.T, out string, env *simEnv) {
	t.Helper()
	if strings.Contains(out, testSecret) {
		t.Fatal("the client secret appears in the logs")
	}
	if part := env.sim.LeakedToken(out); part != "" {
		t.Fatalf("a token appears in the logs: %q", part)
	}
	if !strings.Contains(out, "level=DEBUG") {
		t.Fatal("no debug lines were logged: the check proves nothing")
	}
}

// writeBundle writes a CA bundle of a PEM file and more PEM bytes.
func writeBundle(t *testing.T, file string, more ...[]byte) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range more {
		b = append(b, m...)
	}
	p := filepath.Join(t.TempDir(), "bundle.pem")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
