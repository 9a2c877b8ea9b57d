package poller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/internal/natstest"
	"github.com/mailpoller/mailpoller/internal/wait"
	"github.com/mailpoller/mailpoller/publish"
	"github.com/nats-io/nats.go/jetstream"
)

func newNATS(t *testing.T) *publish.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := publish.Connect(ctx, config.NATS{Embedded: config.Embedded{Listen: "127.0.0.1:0", StoreDir: t.TempDir()}}, nil)
	if err != nil {
		t.Fatalf("publish.Connect() = %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestLeaseExclusiveReleaseAndTakeover(t *testing.T) {
	nc := newNATS(t)
	ctx := context.Background()
	const ttl = time.Second
	a, err := newLeases(ctx, nc, "instance-a", ttl)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newLeases(ctx, nc, "instance-b", ttl)
	key := "mailbox.support.x=40y.INBOX"

	la, _, err := a.tryAcquire(ctx, key)
	if err != nil || la == nil {
		t.Fatalf("a.tryAcquire() = %v, %v", la, err)
	}
	lb, holder, err := b.tryAcquire(ctx, key)
	if err != nil || lb != nil || holder != "instance-a" {
		t.Fatalf("b.tryAcquire() while a holds = %v, %q, %v; want nil, instance-a", lb, holder, err)
	}
	// A restart of a under the same name takes its own lease back at once.
	a2, _ := newLeases(ctx, nc, "instance-a", ttl)
	if l, _, err := a2.tryAcquire(ctx, key); err != nil || l == nil {
		t.Fatalf("same-name tryAcquire() = %v, %v", l, err)
	} else {
		la = l
	}
	// Clean release frees it for b at once.
	la.release()
	lb, _, err = b.tryAcquire(ctx, key)
	if err != nil || lb == nil {
		t.Fatalf("b.tryAcquire() after release = %v, %v", lb, err)
	}
	// b dies (no renewals): a gets the mailbox once the TTL has passed, not before.
	if l, _, _ := a.tryAcquire(ctx, key); l != nil {
		t.Fatal("a took the lease while b's was still live")
	}
	wait.For(t, 5*ttl, "takeover after holder died", func() bool {
		l, _, err := a.tryAcquire(ctx, key)
		return err == nil && l != nil
	})
}

func TestLeaseKeepDetectsLoss(t *testing.T) {
	nc := newNATS(t)
	ctx := context.Background()
	a, _ := newLeases(ctx, nc, "instance-a", time.Second)
	a.total = 1
	l, _, err := a.tryAcquire(ctx, "mailbox.k")
	if err != nil || l == nil {
		t.Fatal(err)
	}
	// Someone else overwrites the key (as after a takeover): keep must report the loss.
	if _, err := a.kv.Put(ctx, "mailbox.k", []byte("intruder")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.keep(ctx, nil) }()
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, errLeaseLost) {
			t.Fatalf("keep() = %v, want errLeaseLost", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("keep() did not notice the lost lease")
	}
}

func TestLeaseShare(t *testing.T) {
	ls := &leases{held: map[string]bool{"a": true, "b": true, "c": true, "d": true}, total: 6, peers: 2}
	if ls.wantMore() {
		t.Fatal("holding 4 of 6 with 2 peers: wantMore() = true")
	}
	if ls.shouldShed("a") || ls.shouldShed("c") || !ls.shouldShed("d") {
		t.Fatalf("shouldShed: want only d shed (share %d)", ls.share())
	}
	ls.peers = 1
	if ls.shouldShed("d") || !ls.wantMore() {
		t.Fatal("alone: nothing to shed and room for more")
	}
}

// TestLeaseKeepGivesUpBeforeExpiry: when renewals hang (the NATS server is
// gone and the client waits to reconnect), keep reports the loss while the
// lease is still ours, not after another instance could have taken it.
func TestLeaseKeepGivesUpBeforeExpiry(t *testing.T) {
	port := natstest.FreePort(t)
	srv := natstest.Server(t, port, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nc, err := publish.Connect(ctx, config.NATS{URL: fmt.Sprintf("nats://127.0.0.1:%d", port)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	const ttl = 3 * time.Second
	a, err := newLeases(ctx, nc, "instance-a", ttl)
	if err != nil {
		t.Fatal(err)
	}
	a.total = 1
	l, _, err := a.tryAcquire(ctx, "mailbox.k")
	if err != nil || l == nil {
		t.Fatalf("tryAcquire() = %v, %v", l, err)
	}
	srv.Shutdown()
	if err := l.keep(ctx, nil); !errors.Is(err, errLeaseLost) {
		t.Fatalf("keep() = %v, want errLeaseLost", err)
	}
	// The entry lives ttl from when the server stored it, which is after
	// the last write went out.
	if expires := l.sent.Add(ttl); !time.Now().Before(expires) {
		t.Fatalf("keep() gave the lease up %s after it could expire", time.Since(expires).Round(time.Millisecond))
	}
}

// TestLeaseKeepStopsWhenBucketGone: when the lease bucket disappears (a
// NATS server that lost its store), keep reports the loss at the next
// renewal: the bucket made again is empty, and anyone may claim from it.
func TestLeaseKeepStopsWhenBucketGone(t *testing.T) {
	nc := newNATS(t)
	ctx := context.Background()
	a, _ := newLeases(ctx, nc, "instance-a", 3*time.Second)
	a.total = 1
	l, _, err := a.tryAcquire(ctx, "mailbox.k")
	if err != nil || l == nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc.NATS())
	if err := js.DeleteKeyValue(ctx, publish.LeaseBucket); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.keep(ctx, nil) }()
	select {
	case err := <-done:
		if !errors.Is(err, errLeaseLost) || !strings.Contains(err.Error(), "bucket is gone") {
			t.Fatalf("keep() = %v, want errLeaseLost for the missing bucket", err)
		}
	case <-time.After(10 * time.Second): // the first renewal is due after 1 s (TTL/3)
		t.Fatal("keep() did not notice that the bucket is gone")
	}
}
