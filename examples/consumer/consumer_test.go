package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/message"
	"github.com/mailpoller/mailpoller/publish"
)

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestRunPrintsFetchesAndDedups publishes a real event through the publish
// package (a large attachment and the raw message go to the object store),
// then a replay of it without Nats-Msg-Id (as after the duplicate window),
// and checks the consumer prints the event once, fetched both blobs by key
// with their sha256, and skipped the replay.
func TestRunPrintsFetchesAndDedups(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := publish.Connect(ctx, config.NATS{Embedded: config.Embedded{Listen: "127.0.0.1:0", StoreDir: t.TempDir()}}, nil)
	if err != nil {
		t.Fatalf("Connect() = %v", err)
	}
	defer c.Close()

	raw := []byte("From: Ann <ann@example.com>\r\nSubject: invoice\r\nMessage-ID: <inv-1@example.com>\r\n\r\nsee attached\r\n")
	big := bytes.Repeat([]byte("pdf-bytes "), publish.InlineLimit/5) // over the inline limit: a blob
	small := []byte("note")
	m := &message.Message{MessageID: "inv-1@example.com", Subject: "invoice", Text: "see attached", Size: int64(len(raw)),
		From: []message.Address{{Name: "Ann", Address: "ann@example.com"}},
		Attachments: []message.Attachment{
			{Filename: "invoice.pdf", ContentType: "application/pdf", Size: int64(len(big)), SHA256: sum(big), Content: big},
			{Filename: "note.txt", ContentType: "text/plain", Size: int64(len(small)), SHA256: sum(small), Content: small},
		}}
	o := publish.Origin{Account: "support", Mailbox: "support@contoso.com", Folder: "INBOX", Protocol: "imap", ServerID: "1:7"}
	ev := publish.NewEvent(o, m, time.Now().UTC())
	msg, err := c.Prepare(ctx, publish.Subject(c.Prefix(), o.Account, o.Mailbox), ev, raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	if ev.Data.Attachments[0].Blob == nil || ev.Data.Raw == nil {
		t.Fatalf("the publisher stored no blobs: %+v", ev.Data)
	}
	replay := nats.NewMsg(msg.Subject) // no Nats-Msg-Id: as a replay after the window, JetStream keeps it
	replay.Data = msg.Data
	if _, err := c.JetStream().PublishMsg(ctx, replay); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	err = Run(ctx, c.JetStream(), Options{Stream: c.Stream(), Durable: "example", Bucket: publish.BlobBucket, Seen: NewSeen(10), Limit: 2}, &out)
	if err != nil {
		t.Fatalf("Run() = %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"event id=" + ev.ID + " account=support mailbox=support@contoso.com from=ann@example.com subject=\"invoice\" attachments=2",
		"attachment \"invoice.pdf\" blob key=" + sum(big) + " bytes=" + itoa(len(big)) + " sha256=" + sum(big) + " ok",
		"attachment \"note.txt\" inline bytes=4 sha256=" + sum(small) + " ok",
		"raw key=" + sum(raw) + " bytes=" + itoa(len(raw)) + " sha256 ok",
		"duplicate id=" + ev.ID + " skipped",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "event id="); n != 1 {
		t.Errorf("%d events printed, want 1:\n%s", n, got)
	}

	// Both were acked: the durable consumer has nothing pending.
	cons, err := c.JetStream().Consumer(ctx, c.Stream(), "example")
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.NumPending != 0 || info.AckFloor.Stream != 2 {
		t.Errorf("consumer after Run: ack pending %d, pending %d, ack floor %d; want 0, 0, 2", info.NumAckPending, info.NumPending, info.AckFloor.Stream)
	}
}

// TestFetchRefusesWrongContent shows the key check: a blob whose bytes do
// not hash to its key is an error, not a silent success.
func TestFetchRefusesWrongContent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := publish.Connect(ctx, config.NATS{Embedded: config.Embedded{Listen: "127.0.0.1:0", StoreDir: t.TempDir()}}, nil)
	if err != nil {
		t.Fatalf("Connect() = %v", err)
	}
	defer c.Close()
	store, err := c.JetStream().ObjectStore(ctx, publish.BlobBucket)
	if err != nil {
		t.Fatal(err)
	}
	key := sum([]byte("expected"))
	if _, err := store.PutBytes(ctx, key, []byte("tampered")); err != nil {
		t.Fatal(err)
	}
	if _, err := fetch(ctx, store, &Blob{Key: key}); err == nil || !strings.Contains(err.Error(), "has sha256") {
		t.Fatalf("fetch() = %v, want a sha256 mismatch", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
