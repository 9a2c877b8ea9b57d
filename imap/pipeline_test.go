package imap

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailpoller/mailpoller/internal/dovecottest"
	"github.com/mailpoller/mailpoller/source"
)

// TestPipelinedBacklog reads a backlog of more than two chunks of sizes
// and many batches from a real Dovecot, with the bodies of later batches
// and the sizes of later chunks asked for while earlier ones stream: every
// message comes once, in UID order, whole or (over the allowance) as its
// header; checkpoints only move forward. A handler that fails mid-way
// ends the Poll with its error and leaves the connection usable.
func TestPipelinedBacklog(t *testing.T) {
	const n = 2*sizesChunk + 100
	const limit = 30 << 10
	srv := dovecottest.Start(t, dovecottest.Options{
		Users:      []string{"pipe@example.test"},
		Introspect: func(tok string) (string, bool) { return "app@example.test", tok == "good-token" },
	})
	// One connection for all the appends (srv.Append logs in for each).
	ac, err := imapclient.DialTLS(srv.Addr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: srv.CAPool}})
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	if err := ac.Login("pipe@example.test", dovecottest.Password("pipe@example.test")).Wait(); err != nil {
		t.Fatal(err)
	}
	want := make([][]byte, n)
	for i := range n {
		body := bytes.Repeat([]byte("x"), 100+i%300)
		if i%7 == 3 {
			body = bytes.Repeat([]byte("y"), 40<<10) // over the allowance
		}
		want[i] = fmt.Appendf(nil, "Subject: m%d\r\n\r\n%s\r\n", i, body)
		cmd := ac.Append("INBOX", int64(len(want[i])), nil)
		cmd.Write(want[i])
		cmd.Close()
		if _, err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	src, err := Open(ctx, Options{Addr: srv.Addr, TLSConfig: &tls.Config{RootCAs: srv.CAPool},
		Mailbox: source.Mailbox{Address: "pipe@example.test", MaxMessageBytes: limit},
		Token:   func(context.Context) (string, time.Time, error) { return "good-token", time.Now().Add(time.Hour), nil }})
	if err != nil {
		t.Fatalf("Open = %v\n%s", err, srv.Log())
	}
	defer src.Close()

	boom := errors.New("handler failed")
	calls := 0
	err = src.Poll(ctx, nil, func(context.Context, source.Batch) error {
		if calls++; calls == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || calls != 3 {
		t.Fatalf("Poll with a handler failing at batch 3 = %v after %d batches, want the handler's error after 3", err, calls)
	}

	var items []source.Item
	var last uint32
	batches := 0
	err = src.Poll(ctx, nil, func(_ context.Context, b source.Batch) error {
		items = append(items, b.Items...)
		if len(b.Items) > 0 {
			batches++
		}
		var st state
		if b.State != nil {
			if err := json.Unmarshal(b.State, &st); err != nil {
				return err
			}
			if st.LastUID < last {
				t.Errorf("checkpoint went back from %d to %d", last, st.LastUID)
			}
			last = st.LastUID
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Poll on the same connection = %v", err)
	}
	if len(items) != n || batches < n/batchMessages {
		t.Fatalf("got %d items in %d batches, want %d in at least %d", len(items), batches, n, n/batchMessages)
	}
	for i, it := range items {
		switch {
		case it.Err != nil:
			t.Fatalf("item %d: %v", i, it.Err)
		case it.UID != uint32(i+1):
			t.Fatalf("item %d has UID %d, want %d", i, it.UID, i+1)
		case len(want[i]) > limit && (!it.Truncated || !bytes.Equal(it.Raw, want[i][:bytes.Index(want[i], []byte("\r\n\r\n"))+4])):
			t.Fatalf("item %d (over the allowance): truncated %v, raw %q", i, it.Truncated, it.Raw)
		case len(want[i]) <= limit && (it.Truncated || !bytes.Equal(it.Raw, want[i])):
			t.Fatalf("item %d: truncated %v, %d bytes, want %d", i, it.Truncated, len(it.Raw), len(want[i]))
		}
	}
	if last != n {
		t.Errorf("last checkpoint at UID %d, want %d", last, n)
	}
}
