package publish

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/internal/logtest"
	"github.com/mailpoller/mailpoller/internal/natstest"
	"github.com/mailpoller/mailpoller/internal/wait"
	"github.com/mailpoller/mailpoller/message"
)

// TestRetentionApplied: nats.retention's limits are set on a stream and a
// blob bucket that exist without limits (made by an earlier version), and
// mailpoller_stored_bytes reports what both hold.
func TestRetentionApplied(t *testing.T) {
	port := natstest.FreePort(t)
	natstest.Server(t, port, t.TempDir())
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// What an earlier mailpoller left: both stores without limits.
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "MAIL", Subjects: []string{"mail.inbound.>"}, Duplicates: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: BlobBucket}); err != nil {
		t.Fatal(err)
	}

	keep := config.Retention{EventsMaxAge: config.Duration(48 * time.Hour), EventsMaxBytes: 1 << 20,
		BlobsMaxAge: config.Duration(96 * time.Hour), BlobsMaxBytes: 8 << 20}
	c, err := Connect(ctx, config.NATS{URL: url, Retention: keep}, debugLog(&logtest.Buffer{}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct {
		stream string
		age    time.Duration
		bytes  int64
	}{{"MAIL", 48 * time.Hour, 1 << 20}, {"OBJ_" + BlobBucket, 96 * time.Hour, 8 << 20}} {
		st, err := js.Stream(ctx, tc.stream)
		if err != nil {
			t.Fatal(err)
		}
		if cfg := st.CachedInfo().Config; cfg.MaxAge != tc.age || cfg.MaxBytes != tc.bytes {
			t.Errorf("stream %s: max_age %s, max_bytes %d; want %s, %d", tc.stream, cfg.MaxAge, cfg.MaxBytes, tc.age, tc.bytes)
		}
	}

	raw := []byte("From: a@example.net\r\nSubject: hello\r\n\r\nbody\r\n")
	o := Origin{Account: "support", Mailbox: "support@contoso.test", Folder: "INBOX", Protocol: "imap", ServerID: "1:1"}
	if _, err := c.Publish(ctx, Subject(c.Prefix(), o.Account, o.Mailbox), NewEvent(o, message.Parse(raw, nil), time.Now()), raw); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c.StorageCollector())
	got := gather(t, reg)
	for _, k := range []string{"mailpoller_stored_bytes/events", "mailpoller_stored_bytes/blobs"} {
		if got[k] <= 0 {
			t.Errorf("%s = %v, want > 0 (all: %v)", k, got[k], got)
		}
	}
	if got["mailpoller_stored_bytes_limit/events"] != 1<<20 || got["mailpoller_stored_bytes_limit/blobs"] != 8<<20 {
		t.Errorf("limits = %v", got)
	}

	// Left-out limits (a config built in code) remove them again.
	c2, err := Connect(ctx, config.NATS{URL: url}, debugLog(&logtest.Buffer{}))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	st, _ := js.Stream(ctx, "MAIL")
	if cfg := st.CachedInfo().Config; cfg.MaxAge != 0 || cfg.MaxBytes != -1 {
		t.Errorf("MAIL after limits removed: max_age %s, max_bytes %d", cfg.MaxAge, cfg.MaxBytes)
	}
}

// TestRetentionOnNewStores: a fresh embedded server's stream and bucket
// are made with the limits, the dedup window within a short max age.
func TestRetentionOnNewStores(t *testing.T) {
	keep := config.Retention{EventsMaxAge: config.Duration(30 * time.Minute), BlobsMaxAge: config.Duration(time.Hour), BlobsMaxBytes: 1 << 30}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Connect(ctx, config.NATS{Embedded: config.Embedded{Listen: ListenNone, StoreDir: t.TempDir()}, Retention: keep}, debugLog(&logtest.Buffer{}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.JetStream().Stream(ctx, "MAIL")
	if err != nil {
		t.Fatal(err)
	}
	if cfg := st.CachedInfo().Config; cfg.MaxAge != 30*time.Minute || cfg.MaxBytes != -1 || cfg.Duplicates != 30*time.Minute {
		t.Errorf("MAIL: max_age %s, max_bytes %d, duplicates %s", cfg.MaxAge, cfg.MaxBytes, cfg.Duplicates)
	}
	ob, err := c.JetStream().Stream(ctx, "OBJ_"+BlobBucket)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := ob.CachedInfo().Config; cfg.MaxAge != time.Hour || cfg.MaxBytes != 1<<30 {
		t.Errorf("blobs: max_age %s, max_bytes %d", cfg.MaxAge, cfg.MaxBytes)
	}
}

// gather is reg's gauges as "name/store" → value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			store := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "store" {
					store = l.GetValue()
				}
			}
			out[mf.GetName()+"/"+store] = m.GetGauge().GetValue()
		}
	}
	return out
}

// TestBlobRewrittenBeforeItWouldExpire: a blob stored earlier is reused
// only while it will outlive an event published now; past that it is
// written again (a new object), so no event points at an expired blob.
func TestBlobRewrittenBeforeItWouldExpire(t *testing.T) {
	// Blobs are kept 50ms longer than events: a stored blob may be reused
	// for 50ms, then must be written anew.
	keep := config.Retention{EventsMaxAge: config.Duration(time.Hour), BlobsMaxAge: config.Duration(time.Hour + 50*time.Millisecond)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Connect(ctx, config.NATS{Embedded: config.Embedded{Listen: ListenNone, StoreDir: t.TempDir()}, Retention: keep}, debugLog(&logtest.Buffer{}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := []byte("an attachment shared by two messages")
	nuid := func() string {
		b, err := c.PutBlob(ctx, data)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.blobs.GetInfo(ctx, b.Key)
		if err != nil {
			t.Fatal(err)
		}
		return info.NUID
	}
	first := nuid()
	if again := nuid(); again != first {
		t.Fatalf("a fresh blob was written again (%s, then %s)", first, again)
	}
	wait.For(t, 5*time.Second, "the blob is rewritten once reusing it would outlive it", func() bool { return nuid() != first })
}
