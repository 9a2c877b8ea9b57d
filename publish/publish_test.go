package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/message"
)

func newConn(t *testing.T) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Connect(ctx, config.NATS{Embedded: config.Embedded{Listen: "127.0.0.1:0", StoreDir: t.TempDir()}}, nil)
	if err != nil {
		t.Fatalf("Connect() = %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// validateEvent checks payload against configs/event.schema.json.
func validateEvent(t *testing.T, payload []byte) {
	t.Helper()
	c := jsonschema.NewCompiler()
	sch, err := c.Compile("../configs/event.schema.json")
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(v); err != nil {
		t.Fatalf("event does not match the schema: %v\n%s", err, payload)
	}
}

func fetchOne(t *testing.T, c *Conn, subject string) jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := c.JetStream().OrderedConsumer(ctx, c.Stream(), jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatalf("no event on %s: %v", subject, err)
	}
	return m
}

func TestPublishDedupAndBlobs(t *testing.T) {
	c := newConn(t)
	ctx := context.Background()
	raw := []byte("Subject: hi\r\nMessage-ID: <a@b>\r\n\r\nbody\r\n")
	big := bytes.Repeat([]byte("x"), InlineLimit+1)
	small := []byte("small attachment")
	m := &message.Message{MessageID: "a@b", Subject: "hi", Text: "body", Size: int64(len(raw)),
		Attachments: []message.Attachment{
			{Filename: "big.bin", ContentType: "application/octet-stream", Size: int64(len(big)), SHA256: sum(big), Content: big},
			{Filename: "small.txt", ContentType: "text/plain", Size: int64(len(small)), SHA256: sum(small), Content: small},
		}}
	o := Origin{Account: "support", Mailbox: "Billing@Contoso.com", Folder: "INBOX", Protocol: "imap", ServerID: "7:42"}
	ev := NewEvent(o, m, time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC))
	subject := Subject(c.Prefix(), o.Account, o.Mailbox)
	if subject != "mail.inbound.support.billing_at_contoso_com" {
		t.Fatalf("Subject() = %s", subject)
	}
	ack, err := c.Publish(ctx, subject, ev, raw)
	if err != nil || ack.Duplicate {
		t.Fatalf("Publish() = %+v, %v", ack, err)
	}
	// The same message again (a replay) carries the same id and is dropped.
	ev2 := NewEvent(o, m, time.Time{})
	if ev2.ID != ev.ID {
		t.Fatalf("replay id %s != %s", ev2.ID, ev.ID)
	}
	ack, err = c.Publish(ctx, subject, ev2, raw)
	if err != nil || !ack.Duplicate {
		t.Fatalf("second Publish() = %+v, %v; want duplicate", ack, err)
	}
	msg := fetchOne(t, c, subject)
	if got := msg.Headers().Get(jetstream.MsgIDHeader); got != ev.ID {
		t.Fatalf("Nats-Msg-Id = %q, want %q", got, ev.ID)
	}
	validateEvent(t, msg.Data())
	var got Event
	if err := json.Unmarshal(msg.Data(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Data.Raw == nil {
		t.Fatal("event has no raw blob")
	}
	b, err := c.GetBlob(ctx, got.Data.Raw)
	if err != nil || !bytes.Equal(b, raw) {
		t.Fatalf("raw blob = %q, %v", b, err)
	}
	if a := got.Data.Attachments[0]; a.Blob == nil || a.Data != nil {
		t.Fatalf("big attachment not moved to a blob: %+v", a)
	}
	if b, err := c.GetBlob(ctx, got.Data.Attachments[0].Blob); err != nil || !bytes.Equal(b, big) {
		t.Fatalf("big attachment blob differs: %v", err)
	}
	if a := got.Data.Attachments[1]; a.Blob != nil || !bytes.Equal(a.Data, small) {
		t.Fatalf("small attachment not inline: %+v", a)
	}
}

func TestPublishFitsMaxPayload(t *testing.T) {
	c := newConn(t)
	ctx := context.Background()
	text := strings.Repeat("lorem ipsum ", int(c.MaxPayload()/10))
	m := &message.Message{Subject: "huge body", Text: text, HTML: "<p>" + text + "</p>"}
	for i := 0; i < 20; i++ { // twenty 60 KiB inline attachments: 1.2 MiB of base64
		data := bytes.Repeat([]byte{byte(i)}, 60<<10)
		m.Attachments = append(m.Attachments, message.Attachment{Filename: "a.bin", ContentType: "application/octet-stream",
			Size: int64(len(data)), SHA256: strings.Repeat("a", 64), Content: data})
	}
	o := Origin{Account: "a", Mailbox: "x@y.z", Folder: "INBOX", Protocol: "imap", ServerID: "1:1"}
	ev := NewEvent(o, m, time.Now())
	subject := Subject(c.Prefix(), "a", "x@y.z")
	if _, err := c.Publish(ctx, subject, ev, []byte("raw")); err != nil {
		t.Fatalf("Publish() = %v", err)
	}
	msg := fetchOne(t, c, subject)
	if int64(len(msg.Data())) > c.MaxPayload() {
		t.Fatalf("event is %d bytes, max payload %d", len(msg.Data()), c.MaxPayload())
	}
	validateEvent(t, msg.Data())
	var got Event
	json.Unmarshal(msg.Data(), &got)
	if got.Data.TextBlob == nil || got.Data.Text != "" {
		t.Fatal("large text body was not moved to a blob")
	}
	b, err := c.GetBlob(ctx, got.Data.TextBlob)
	if err != nil || string(b) != text {
		t.Fatalf("text blob differs: %v", err)
	}
}

func TestState(t *testing.T) {
	c := newConn(t)
	ctx := context.Background()
	key := StateKey("support", "Billing@Contoso.com", "Inbox/Sub folder")
	if strings.ContainsAny(key, " /@") {
		t.Fatalf("StateKey() = %q has characters KV keys do not allow", key)
	}
	if st, err := c.LoadState(ctx, key); err != nil || st != nil {
		t.Fatalf("LoadState() on empty bucket = %q, %v", st, err)
	}
	if err := c.SaveState(ctx, key, []byte(`{"last_uid":5}`)); err != nil {
		t.Fatal(err)
	}
	if st, err := c.LoadState(ctx, key); err != nil || string(st) != `{"last_uid":5}` {
		t.Fatalf("LoadState() = %q, %v", st, err)
	}
	if StateKey("a", "x@y", "F") == StateKey("a", "x@y", "f ") {
		t.Fatal("distinct folders share a key")
	}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestStreamRecreatedAfterDelete: an operator deletes the events stream;
// the publish that finds it missing fails (nothing is flagged on its
// account) and recreates it, and the retry lands.
func TestStreamRecreatedAfterDelete(t *testing.T) {
	c := newConn(t)
	ctx := context.Background()
	o := Origin{Account: "support", Mailbox: "support@contoso.com", Folder: "INBOX", Protocol: "imap", ServerID: "1:1"}
	m := &message.Message{MessageID: "a@b", Subject: "hi"}
	subject := Subject(c.Prefix(), o.Account, o.Mailbox)
	if _, err := c.Publish(ctx, subject, NewEvent(o, m, time.Now()), nil); err != nil {
		t.Fatal(err)
	}
	if err := c.JetStream().DeleteStream(ctx, c.Stream()); err != nil {
		t.Fatal(err)
	}
	o.ServerID = "1:2"
	ev := NewEvent(o, m, time.Now())
	if _, err := c.Publish(ctx, subject, ev, nil); err == nil {
		t.Fatal("publish to a deleted stream reported success")
	}
	ack, err := c.Publish(ctx, subject, ev, nil)
	if err != nil || ack.Stream != c.Stream() {
		t.Fatalf("retry after the stream was recreated: %+v, %v", ack, err)
	}
	info, err := c.JetStream().Stream(ctx, c.Stream())
	if err != nil || info.CachedInfo().Config.Duplicates != time.Hour {
		t.Fatalf("recreated stream: %v (%+v)", err, info)
	}
}
