package poller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/message"
	"github.com/mailpoller/mailpoller/publish"
	"github.com/mailpoller/mailpoller/sim"
)

// TestStoreRaw runs three mailboxes, one per store_raw value, each with a
// clean message, one the parser reports a problem in and one over
// max_message_bytes (too_large), and checks which events reference a raw
// blob and which blobs the object store holds.
func TestStoreRaw(t *testing.T) {
	env := newSimEnv(t)
	modes := map[string]string{env.boxes[0]: "always", env.boxes[1]: "on_problems", env.boxes[2]: "never"}
	type mail struct {
		raw      []byte
		problems bool
	}
	sent := map[string]mail{} // by mailbox and UID
	for _, box := range env.boxes {
		clean := sim.Generate(box, 1)
		bad := []byte("From: a@example.net\r\nTo: <" + box + ">\r\nSubject: broken charset\r\nMessage-ID: <bad-" + box + ">\r\n" +
			"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n\r\nbody for " + box + "\r\n")
		big := append([]byte("From: a@example.net\r\nTo: <"+box+">\r\nSubject: big\r\nMessage-ID: <big-"+box+">\r\n\r\n"),
			bytes.Repeat([]byte("0123456789abcdef\r\n"), 1000)...)
		if p := message.Parse(clean, nil).Problems; len(p) != 0 {
			t.Fatalf("the clean message has problems %v", p)
		}
		if p := message.Parse(bad, nil).Problems; len(p) == 0 {
			t.Fatal("the broken message has no problems")
		}
		for _, raw := range [][]byte{clean, bad, big} {
			m, err := env.sim.Store().Deliver(box, "INBOX", raw, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			sent[fmt.Sprintf("%s/%d", box, m.UID)] = mail{raw, !bytes.Equal(raw, clean)}
		}
	}
	t.Setenv("TEST_CLIENT_SECRET", testSecret)
	y := fmt.Sprintf(`nats: {url: "nats://127.0.0.1:1"}
http: {listen: ""}
defaults: {poll_interval: 1s, start_from: all, max_message_bytes: 4KiB}
accounts:
  - name: support
    tenant_id: %s
    client_id: %s
    client_secret: ${TEST_CLIENT_SECRET}
    authority: %s
    server: %s
    tls: {ca_file: %s}
    mailbox: %s
    additional_users:
      - address: %s
        store_raw: on_problems
    store_raw: always
  - name: hr
    tenant_id: %s
    client_id: %s
    client_secret: ${TEST_CLIENT_SECRET}
    authority: %s
    server: %s
    tls: {ca_file: %s}
    mailbox: %s
    store_raw: never
`, testTenant, testClient, env.ep.Authority, env.ep.IMAP, env.ep.CAFile, env.boxes[0], env.boxes[1],
		testTenant, testClient, env.ep.Authority, env.ep.IMAP, env.ep.CAFile, env.boxes[2])
	cfg, err := config.Parse([]byte(y), "test.yaml")
	if err != nil {
		t.Fatalf("config.Parse() = %v", err)
	}
	nc := newNATS(t)
	runAll(t, cfg, nc, slog.New(slog.DiscardHandler))

	evs := events(t, nc) // each validated against configs/event.schema.json
	if len(evs) != len(sent) {
		t.Fatalf("%d events, want %d", len(evs), len(sent))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wantBlobs := map[string]bool{}
	for _, ev := range evs {
		uid := ev.Data.ServerID[strings.Index(ev.Data.ServerID, ":")+1:]
		m, ok := sent[ev.Data.Mailbox+"/"+uid]
		if !ok {
			t.Fatalf("event for unknown message %s %s", ev.Data.Mailbox, ev.Data.ServerID)
		}
		mode := modes[ev.Data.Mailbox]
		want := mode == "always" || mode == "on_problems" && m.problems
		if m.problems != (len(ev.Data.Problems) > 0) {
			t.Fatalf("%s %q: problems %v, want some: %v", ev.Data.Mailbox, ev.Data.Subject, ev.Data.Problems, m.problems)
		}
		if got := ev.Data.Raw != nil; got != want {
			t.Errorf("store_raw %s, %q (problems %v): raw reference %v, want %v", mode, ev.Data.Subject, ev.Data.Problems, got, want)
			continue
		}
		if !want {
			continue
		}
		wantBlobs[ev.Data.Raw.Key] = true
		b, err := nc.GetBlob(ctx, ev.Data.Raw)
		if err != nil {
			t.Fatalf("raw blob of %s: %v", ev.ID, err)
		}
		if !bytes.HasPrefix(m.raw, b) || len(b) == 0 {
			t.Errorf("raw blob of %q is not the message (or its header when too large)", ev.Data.Subject)
		}
	}
	obs, err := nc.JetStream().ObjectStore(ctx, publish.BlobBucket)
	if err != nil {
		t.Fatal(err)
	}
	infos, err := obs.List(ctx)
	if err != nil {
		t.Fatalf("list %s: %v", publish.BlobBucket, err)
	}
	// always: 3 messages; on_problems: 2 (broken charset, too large); never: 0.
	if len(infos) != 5 || len(wantBlobs) != 5 {
		var names []string
		for _, i := range infos {
			names = append(names, i.Name)
		}
		t.Errorf("%s holds %d objects %v, want 5 (the raw blobs referenced: %d)", publish.BlobBucket, len(infos), names, len(wantBlobs))
	}
	for _, i := range infos {
		if !wantBlobs[i.Name] {
			t.Errorf("object %s is not a referenced raw blob", i.Name)
		}
	}
}

// TestStoreRawNeverDeadLetter checks that an event too large for the NATS
// max payload still dead-letters with its raw blob under store_raw: never,
// as it did before store_raw: the dead letter is the message's only copy.
func TestStoreRawNeverDeadLetter(t *testing.T) {
	env := newSimEnv(t)
	var to bytes.Buffer
	for i := 0; to.Len() < 900<<10; i++ { // under the parser's 1 MiB header budget: no problem
		fmt.Fprintf(&to, "\"Recipient %d\" <recipient%d@contoso.test>,\r\n ", i, i)
	}
	raw := []byte("From: a@example.net\r\nTo: " + strings.TrimSuffix(to.String(), ",\r\n ") + "\r\nSubject: many recipients\r\nMessage-ID: <many@example.net>\r\n\r\nhi\r\n")
	if p := message.Parse(raw, nil).Problems; len(p) != 0 {
		t.Fatalf("the message has problems %v", p)
	}
	if _, err := env.sim.Store().Deliver(env.boxes[0], "INBOX", raw, time.Now()); err != nil {
		t.Fatal(err)
	}
	nc := newNATS(t)
	runAll(t, env.config(t, "imap", "    store_raw: never\n"), nc, slog.New(slog.DiscardHandler))
	if evs := events(t, nc); len(evs) != 0 {
		t.Fatalf("%d events, want 0 (the event cannot fit)", len(evs))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := nc.JetStream().Stream(ctx, nc.Stream())
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, publish.DeadLetterSubject(nc.Prefix(), "support", env.boxes[0]))
	if err != nil {
		t.Fatalf("no dead letter: %v", err)
	}
	var dl publish.DeadLetter
	if err := json.Unmarshal(m.Data, &dl); err != nil {
		t.Fatal(err)
	}
	if dl.Raw == nil {
		t.Fatalf("dead letter %s carries no raw blob", m.Data)
	}
	if b, err := nc.GetBlob(ctx, dl.Raw); err != nil || !bytes.Equal(b, raw) {
		t.Fatalf("dead letter's raw blob differs from the message: %v", err)
	}
}
