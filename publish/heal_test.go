package publish

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/internal/logtest"
	"github.com/mailpoller/mailpoller/internal/natstest"
	"github.com/mailpoller/mailpoller/internal/wait"
	"github.com/mailpoller/mailpoller/message"
)

// TestExternalServerComesBackEmpty: the user's NATS server is replaced by
// one that has none of mailpoller's streams (a wiped store, a new
// cluster). Without restarting mailpoller, the next attempts recreate the
// events stream, the checkpoint bucket, the blob store and the lease
// bucket, and publishing with blobs and checkpoints works again.
func TestExternalServerComesBackEmpty(t *testing.T) {
	port := natstest.FreePort(t)
	first := natstest.Server(t, port, t.TempDir())
	var logs logtest.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Connect(ctx, config.NATS{URL: "nats://127.0.0.1:" + strconv.Itoa(port)}, debugLog(&logs))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Leases(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	o := Origin{Account: "support", Mailbox: "support@contoso.test", Folder: "INBOX", Protocol: "imap"}
	subject := Subject(c.Prefix(), o.Account, o.Mailbox)
	key := StateKey(o.Account, o.Mailbox, o.Folder)
	publish := func(id string) error {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		o.ServerID = id
		raw := []byte("Subject: " + id + "\r\n\r\nbody\r\n")
		if _, err := c.Publish(pctx, subject, NewEvent(o, &message.Message{Subject: id}, time.Now()), raw); err != nil {
			return err
		}
		return c.SaveState(pctx, key, []byte(id))
	}
	if err := publish("1:1"); err != nil {
		t.Fatal(err)
	}

	first.Shutdown()
	first.WaitForShutdown()
	natstest.Server(t, port, t.TempDir())
	wait.For(t, 15*time.Second, "client reconnected to the new server", c.NATS().IsConnected)
	wait.For(t, 15*time.Second, "publishing works on the new server", func() bool { return publish("1:2") == nil })

	if st, err := c.LoadState(ctx, key); err != nil || string(st) != "1:2" {
		t.Fatalf("LoadState() = %q, %v", st, err)
	}
	msg := fetchOne(t, c, subject)
	if !bytes.Contains(msg.Data(), []byte(`"1:2"`)) {
		t.Fatalf("event on the new server: %s", msg.Data())
	}
	raw, err := c.GetBlob(ctx, &message.Blob{Key: sum([]byte("Subject: 1:2\r\n\r\nbody\r\n"))})
	if err != nil || !strings.HasPrefix(string(raw), "Subject: 1:2") {
		t.Fatalf("raw blob on the new server: %q, %v", raw, err)
	}
	if _, err := c.JetStream().KeyValue(ctx, LeaseBucket); err != nil {
		t.Fatalf("lease bucket on the new server: %v", err)
	}
	if got := logs.String(); !strings.Contains(got, "has been recreated") {
		t.Errorf("recreating the buckets was not logged:\n%s", got)
	}
}
