package imap_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"

	"github.com/mailpoller/mailpoller/imap"
	"github.com/mailpoller/mailpoller/internal/hostile"
	"github.com/mailpoller/mailpoller/internal/logtest"
	"github.com/mailpoller/mailpoller/internal/memtest"
	"github.com/mailpoller/mailpoller/source"
)

// The tests in this file each run the Source against a hostile.Server that
// misbehaves in one way, and fail on the Source as it was before it was
// taught to survive that.

const testToken = "opaque.access.token.0123456789abcdefghijklmnopqrstuvwxyz"

func mail(n int) []byte {
	return fmt.Appendf(nil, "From: a@example.test\r\nTo: b@example.test\r\nSubject: message %d\r\nMessage-ID: <%d@example.test>\r\n\r\nbody %d\r\n", n, n, n)
}

// options are Options for srv with short deadlines.
func options(srv *hostile.Server) imap.Options {
	return imap.Options{
		Addr: srv.Addr, TLSConfig: srv.TLSConfig(), Mailbox: source.Mailbox{Address: srv.Mailbox},
		ReadTimeout: 2 * time.Second, CommandTimeout: 5 * time.Second,
		Token: func(context.Context) (string, time.Time, error) {
			return testToken, time.Now().Add(time.Hour), nil
		},
		Logger: slog.New(slog.DiscardHandler),
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func open(t *testing.T, ctx context.Context, o imap.Options) *imap.Source {
	t.Helper()
	src, err := imap.Open(ctx, o)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// poll runs one Poll and returns the items handed over and the last
// checkpoint.
func poll(ctx context.Context, src *imap.Source, state []byte) ([]source.Item, []byte, error) {
	var items []source.Item
	last := state
	err := src.Poll(ctx, state, func(_ context.Context, b source.Batch) error {
		items = append(items, b.Items...)
		if b.State != nil {
			last = b.State
		}
		return nil
	})
	return items, last, err
}

func subjects(items []source.Item) []string {
	var out []string
	for _, it := range items {
		if i := strings.Index(string(it.Raw), "Subject: "); i >= 0 {
			out = append(out, strings.SplitN(string(it.Raw[i+9:]), "\r\n", 2)[0])
		} else {
			out = append(out, "?")
		}
	}
	return out
}

// peakHeap runs f and returns how far the live heap rose above where it
// was, sampled every half millisecond.
func peakHeap(f func()) uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	runtime.GC()
	base := read()
	var peak atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(500 * time.Microsecond)
		defer t.Stop()
		for {
			if v := read(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	f()
	close(done)
	<-stopped
	return max(peak.Load(), base) - base
}

const memBound = 64 << 20

// A FETCH literal announcing a terabyte fails the connection at once,
// allocating nothing of the kind.
func TestHugeLiteralAnnouncement(t *testing.T) {
	srv := hostile.Start(t, hostile.Options{})
	srv.Deliver(t, "INBOX", mail(1))
	ctx := testContext(t)
	src := open(t, ctx, options(srv))
	srv.Misbehave(hostile.Faults{BodyLiteral: func(int64) int64 { return 999999999999 }})
	var err error
	n := memtest.Allocated(func() { _, _, err = poll(ctx, src, nil) })
	if !errors.Is(err, imap.ErrServerLimit) {
		t.Fatalf("Poll = %v, want ErrServerLimit", err)
	}
	if n > memBound {
		t.Errorf("Poll allocated %d MiB for a literal announcing 999999999999 bytes, want under %d MiB", n>>20, memBound>>20)
	}
}

// A message whose RFC822.SIZE is small but whose literal is 256 MiB is
// handed over truncated to its header, the rest discarded as it arrives.
func TestLiteralOverAllowance(t *testing.T) {
	srv := hostile.Start(t, hostile.Options{})
	srv.Deliver(t, "INBOX", mail(1))
	srv.Deliver(t, "INBOX", mail(2))
	ctx := testContext(t)
	o := options(srv)
	o.MaxMessageBytes = 64 << 10
	// Discarding the literal takes a while under -race on a busy machine:
	// the command bound here is not what is tested.
	o.CommandTimeout = 60 * time.Second
	src := open(t, ctx, o)
	const announced = 256 << 20
	first := true
	srv.Misbehave(hostile.Faults{BodyLiteral: func(n int64) int64 {
		if first {
			first = false
			return announced
		}
		return n
	}})
	var items []source.Item
	var err error
	// The hostile server's own TLS writes allocate (under -race, sync.Pool
	// keeps little), so the live heap is measured here, not allocations.
	n := peakHeap(func() { items, _, err = poll(ctx, src, nil) })
	t.Logf("heap grew by %d MiB", n>>20)
	if err != nil {
		t.Fatalf("Poll = %v", err)
	}
	if len(items) != 2 {
		t.Fatalf("Poll handed over %d items, want 2", len(items))
	}
	it := items[0]
	if !it.Truncated || it.Size != announced || !strings.Contains(string(it.Raw), "Subject: message 1\r\n") || strings.Contains(string(it.Raw), "filler") {
		t.Errorf("item 1: truncated %v, size %d, %d bytes of raw starting %q; want truncated to its header, size %d", it.Truncated, it.Size, len(it.Raw), it.Raw[:min(len(it.Raw), 120)], announced)
	}
	if items[1].Truncated || string(items[1].Raw) != string(mail(2)) {
		t.Errorf("item 2: truncated %v, %d bytes of raw; want the whole message", items[1].Truncated, len(items[1].Raw))
	}
	if n > memBound {
		t.Errorf("the heap grew by %d MiB while the server sent a 256 MiB literal, want under %d MiB", n>>20, memBound>>20)
	}
}

// A line that never ends fails the connection at the line limit (16 MiB
// by default). go-imap grows a buffer for the line as it reads it, so
// what is measured is the live heap, not the bytes allocated.
func TestLineWithoutEnd(t *testing.T) {
	srv := hostile.Start(t, hostile.Options{})
	srv.Misbehave(hostile.Faults{LongLine: 256 << 20})
	ctx := testContext(t)
	var err error
	n := peakHeap(func() { _, err = imap.Open(ctx, options(srv)) })
	t.Logf("heap grew by %d MiB", n>>20)
	var le *imap.LimitError
	if !errors.As(err, &le) || le.What != "line" {
		t.Fatalf("Open = %v, want a LimitError for the line", err)
	}
	if n > memBound {
		t.Errorf("the heap grew by %d MiB while the server sent a line of 256 MiB, want under %d MiB", n>>20, memBound>>20)
	}
}

// A SELECT without UIDNEXT must not make the checkpoint 4294967295: mail
// delivered after it is still handed over.
func TestSelectWithoutUIDNext(t *testing.T) {
	for _, f := range []hostile.Faults{{DropUIDNext: true}, {DropUIDNext: true, DropUIDValidity: true}} {
		t.Run(fmt.Sprintf("uidvalidity dropped %v", f.DropUIDValidity), func(t *testing.T) {
			srv := hostile.Start(t, hostile.Options{})
			srv.Misbehave(f)
			srv.Deliver(t, "INBOX", mail(1))
			ctx := testContext(t)
			src := open(t, ctx, options(srv))
			items, st, err := poll(ctx, src, nil)
			if err != nil || len(items) != 1 {
				t.Fatalf("first Poll = %d items, %v; want 1", len(items), err)
			}
			var cp struct {
				LastUID uint32 `json:"last_uid"`
			}
			if json.Unmarshal(st, &cp); cp.LastUID != 1 {
				t.Errorf("checkpoint %s, want last_uid 1", st)
			}
			src.Close()
			srv.Deliver(t, "INBOX", mail(2))
			src = open(t, ctx, options(srv))
			items, _, err = poll(ctx, src, st)
			if err != nil || len(items) != 1 || subjects(items)[0] != "message 2" {
				t.Fatalf("Poll after new mail = %v, %v; want message 2", subjects(items), err)
			}
		})
	}
}

// A checkpoint at or beyond UIDNEXT is reported once, and mail arriving
// after it is handed over.
func TestCheckpointBeyondUIDNext(t *testing.T) {
	srv := hostile.Start(t, hostile.Options{})
	srv.Deliver(t, "INBOX", mail(1), goimap.FlagSeen)
	ctx := testContext(t)
	src := open(t, ctx, options(srv))
	_, st, err := poll(ctx, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	src.Close()
	var cp struct {
		UIDValidity uint32 `json:"uidvalidity"`
	}
	json.Unmarshal(st, &cp)
	for _, last := range []uint32{math.MaxUint32, 1000} {
		t.Run(fmt.Sprint(last), func(t *testing.T) {
			srv.Deliver(t, "INBOX", mail(int(last%7)))
			var logs logtest.Buffer
			o := options(srv)
			o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			src := open(t, ctx, o)
			bad := fmt.Appendf(nil, `{"uidvalidity":%d,"last_uid":%d}`, cp.UIDValidity, last)
			items, st, err := poll(ctx, src, bad)
			if err != nil || len(items) != 1 || subjects(items)[0] != fmt.Sprintf("message %d", last%7) {
				t.Fatalf("Poll from checkpoint %s = %v, %v; want the new message", bad, subjects(items), err)
			}
			if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), "uidnext=") || !strings.Contains(logs.String(), fmt.Sprint(last)) {
				t.Errorf("log = %q, want one warning naming the checkpoint and UIDNEXT", logs.String())
			}
			if string(st) == string(bad) {
				t.Errorf("checkpoint stayed %s", st)
			}
			// acknowledge, as the poller does after publishing
			if err := src.AfterRead(ctx, items); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Throttle waits are clamped: 0 would be a login storm, 1e13 ms and 1e20
// ms overflow a duration.
func TestThrottleBackoff(t *testing.T) {
	srv := hostile.Start(t, hostile.Options{})
	ctx := testContext(t)
	for _, c := range []struct {
		ms   string
		want time.Duration
	}{{"0", time.Second}, {"2500", 2500 * time.Millisecond}, {"10000000000000", 15 * time.Minute}, {"100000000000000000000", 15 * time.Minute}} {
		srv.Misbehave(hostile.Faults{Reply: map[string]string{"AUTHENTICATE": "BAD Request is throttled. Suggested Backoff Time: " + c.ms + " milliseconds"}})
		before := srv.Logins()
		_, err := imap.Open(ctx, options(srv))
		var te *imap.ThrottledError
		ok := errors.As(err, &te)
		var got time.Duration
		if ok {
			got, ok = te.RetryAfter()
		}
		if !ok || got != c.want {
			t.Errorf("backoff %s ms: Open = %v, Backoff %s; want %s", c.ms, err, got, c.want)
		}
		if n := srv.Logins() - before; n != 1 {
			t.Errorf("backoff %s ms: server saw %d logins for one Open, want 1", c.ms, n)
		}
	}
}

// A token that expires within the renewal margin still lets mail through:
// the connection is not replaced before its first polls.
func TestShortLivedToken(t *testing.T) {
	srv := hostile.Start(t, hostile.Options{})
	srv.Deliver(t, "INBOX", mail(1))
	ctx := testContext(t)
	o := options(srv)
	o.Token = func(context.Context) (string, time.Time, error) {
		return testToken, time.Now().Add(60 * time.Second), nil
	}
	src := open(t, ctx, o)
	items, st, err := poll(ctx, src, nil)
	if err != nil || len(items) != 1 {
		t.Fatalf("Poll with a token for 60 s = %d items, %v; want 1 item", len(items), err)
	}
	srv.Deliver(t, "INBOX", mail(2))
	items, _, err = poll(ctx, src, st)
	if err != nil || len(items) != 1 {
		t.Fatalf("second Poll = %d items, %v; want 1 item", len(items), err)
	}
}

// One connection polls again and again as mail arrives: its checkpoints
// pass the UIDNEXT it saw at SELECT, and that is no reason to replay.
func TestNewMailOnOneConnection(t *testing.T) {
	srv := hostile.Start(t, hostile.Options{})
	ctx := testContext(t)
	var logs logtest.Buffer
	o := options(srv)
	o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	src := open(t, ctx, o)
	_, st, err := poll(ctx, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		srv.Deliver(t, "INBOX", mail(i))
		var items []source.Item
		items, st, err = poll(ctx, src, st)
		if err != nil || len(items) != 1 || subjects(items)[0] != fmt.Sprintf("message %d", i) {
			t.Fatalf("Poll %d = %v, %v; want message %d alone", i, subjects(items), err, i)
		}
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("warnings for an honest server: %s", logs.String())
	}
}

func wantTimeout(t *testing.T, err error, overall bool) {
	t.Helper()
	var te *imap.TimeoutError
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &te) || te.Overall != overall {
		t.Fatalf("error = %v, want a TimeoutError (overall %v)", err, overall)
	}
}

// A server that completes TLS and never greets fails Open at ReadTimeout.
func TestStalledGreeting(t *testing.T) {
	srv := hostile.Start(t, hostile.Options{})
	srv.Misbehave(hostile.Faults{StallGreeting: true})
	o := options(srv)
	o.ReadTimeout = 200 * time.Millisecond
	_, err := imap.Open(testContext(t), o)
	wantTimeout(t, err, false)
}

// A FETCH that stalls fails the Poll at ReadTimeout; once the stall is
// released a new connection hands the message over.
func TestStalledFetch(t *testing.T) {
	srv := hostile.Start(t, hostile.Options{})
	srv.Deliver(t, "INBOX", mail(1))
	ctx := testContext(t)
	o := options(srv)
	o.ReadTimeout = 300 * time.Millisecond
	src := open(t, ctx, o)
	srv.Misbehave(hostile.Faults{StallFetch: true})
	_, _, err := poll(ctx, src, nil)
	wantTimeout(t, err, false)
	srv.Release()
	src = open(t, ctx, o)
	items, _, err := poll(ctx, src, nil)
	if err != nil || len(items) != 1 {
		t.Fatalf("Poll after the stall = %d items, %v; want 1", len(items), err)
	}
}

// A server that sends a byte every few milliseconds never trips
// ReadTimeout, but a command is bounded as a whole.
func TestSlowloris(t *testing.T) {
	srv := hostile.Start(t, hostile.Options{})
	srv.Deliver(t, "INBOX", append(mail(1), strings.Repeat("0123456789\r\n", 400)...))
	ctx := testContext(t)
	o := options(srv)
	o.ReadTimeout, o.CommandTimeout = 500*time.Millisecond, 1500*time.Millisecond
	src := open(t, ctx, o)
	srv.Misbehave(hostile.Faults{Trickle: 10 * time.Millisecond})
	_, _, err := poll(ctx, src, nil)
	wantTimeout(t, err, true)
}

// IDLE may be silent for its whole length, longer than ReadTimeout.
func TestIdleOutlivesReadTimeout(t *testing.T) {
	srv := hostile.Start(t, hostile.Options{})
	ctx := testContext(t)
	o := options(srv)
	o.ReadTimeout = 100 * time.Millisecond
	src := open(t, ctx, o)
	if _, _, err := poll(ctx, src, nil); err != nil {
		t.Fatal(err)
	}
	if err := src.Wait(ctx, 400*time.Millisecond); err != nil {
		t.Fatalf("Wait(400ms) with ReadTimeout 100ms = %v", err)
	}
	if _, _, err := poll(ctx, src, nil); err != nil {
		t.Fatalf("Poll after IDLE = %v", err)
	}
}

// after_read delete on a server without UIDPLUS only flags \Deleted: a
// plain EXPUNGE would destroy what another client had flagged.
func TestDeleteWithoutUIDPlus(t *testing.T) {
	for _, hide := range []bool{true, false} {
		t.Run(fmt.Sprintf("uidplus hidden %v", hide), func(t *testing.T) {
			srv := hostile.Start(t, hostile.Options{})
			if hide {
				srv.Misbehave(hostile.Faults{HideCaps: []goimap.Cap{goimap.CapUIDPlus}})
			}
			other := srv.Deliver(t, "INBOX", mail(1), goimap.FlagSeen, goimap.FlagDeleted)
			ours := srv.Deliver(t, "INBOX", mail(2))
			ctx := testContext(t)
			o := options(srv)
			o.AfterRead = "delete"
			src := open(t, ctx, o)
			items, _, err := poll(ctx, src, nil)
			if err != nil || len(items) != 1 || items[0].UID != ours {
				t.Fatalf("Poll = %v, %v; want UID %d", items, err, ours)
			}
			if err := src.AfterRead(ctx, items); err != nil {
				t.Fatalf("AfterRead = %v", err)
			}
			left := map[uint32]hostile.Message{}
			for _, m := range srv.Messages(t, "INBOX") {
				left[m.UID] = m
			}
			if _, ok := left[other]; !ok {
				t.Errorf("the message another client flagged \\Deleted was expunged")
			}
			m, ok := left[ours]
			if hide && (!ok || !m.Has(goimap.FlagDeleted)) {
				t.Errorf("without UIDPLUS our message = %+v (present %v), want it flagged \\Deleted and left", m, ok)
			}
			if !hide && ok {
				t.Errorf("with UIDPLUS our message is still there: %+v", m)
			}
		})
	}
}

// Server text that echoes the XOAUTH2 initial response, or the Bearer
// token, never reaches the error.
func TestEchoedCredentials(t *testing.T) {
	srv := hostile.Start(t, hostile.Options{})
	ir := base64.StdEncoding.EncodeToString(imap.XOAUTH2Response(srv.Mailbox, testToken))
	for name, f := range map[string]hostile.Faults{
		"initial response in NO": {EchoAuth: true},
		"bearer in BAD":          {Reply: map[string]string{"AUTHENTICATE": "BAD invalid auth=Bearer " + testToken}},
		"bearer in NOOP reply":   {Reply: map[string]string{"NOOP": "NO session for Bearer " + testToken}},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := testContext(t)
			var err error
			if f.Reply["NOOP"] != "" {
				src := open(t, ctx, options(srv))
				srv.Misbehave(f)
				_, _, err = poll(ctx, src, nil)
			} else {
				srv.Misbehave(f)
				_, err = imap.Open(ctx, options(srv))
			}
			srv.Misbehave(hostile.Faults{})
			if err == nil {
				t.Fatal("no error")
			}
			if s := err.Error(); strings.Contains(s, testToken) || strings.Contains(s, ir) || strings.Contains(s, ir[:40]) {
				t.Errorf("error carries the credential: %s", s)
			}
		})
	}
}
