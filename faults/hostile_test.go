package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/internal/hostile"
	"github.com/mailpoller/mailpoller/internal/logtest"
	"github.com/mailpoller/mailpoller/internal/wait"
	"github.com/mailpoller/mailpoller/message"
	"github.com/mailpoller/mailpoller/poller"
	"github.com/mailpoller/mailpoller/publish"
)

// hostileEnv is the whole poller against a hostile IMAP server (a real
// go-imap server behind a misbehaving proxy), with tokens from the
// simulator and a real JetStream.
type hostileEnv struct {
	*env
	srv  *hostile.Server
	mon  *poller.Monitor
	logs logtest.Buffer
	next int // number of the next message delivered
}

const hostileBox = "support@contoso.test"

func newHostileEnv(t *testing.T) *hostileEnv {
	e := &hostileEnv{env: newEnv(t, hostileBox), mon: poller.NewMonitor()}
	e.srv = hostile.Start(t, hostile.Options{Mailbox: hostileBox})
	return e
}

// run starts the poller against the hostile server; it stops with the
// test.
func (h *hostileEnv) run() {
	t := h.t
	ep := h.sim.Endpoints()
	simCA, err := os.ReadFile(ep.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bundle, append(simCA, h.srv.CAPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	y := fmt.Sprintf(`nats: {url: %q}
http: {listen: ""}
defaults: {poll_interval: 1s, start_from: all, max_message_bytes: 1MiB}
accounts:
  - name: support
    tenant_id: %s
    client_id: %s
    client_secret: %s
    authority: %s
    server: %s
    tls: {ca_file: %s}
    mailbox: %s
`, h.nats.url(), tenant, appA, secret, ep.Authority, h.srv.Addr, bundle, hostileBox)
	cfg, err := config.Parse([]byte(y), "hostile.yaml")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		nc, err := publish.Connect(cctx, cfg.NATS, debugLog(&h.logs))
		ccancel()
		if err != nil {
			t.Errorf("publish.Connect: %v", err)
			return
		}
		defer nc.Close()
		poller.Run(ctx, poller.Options{Config: cfg, NATS: nc, Monitor: h.mon, Logger: debugLog(&h.logs),
			StallTimeout: time.Second, Grace: 5 * time.Second})
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// deliver puts n new messages of extra padding bytes each into INBOX and
// returns their numbers.
func (h *hostileEnv) deliver(n, pad int) []int {
	var nums []int
	for range n {
		h.next++
		raw := fmt.Sprintf("From: a@example.net\r\nTo: %s\r\nSubject: hostile %d\r\nMessage-ID: <hostile-%d@example.net>\r\n"+
			"Date: Wed, 02 Dec 2026 10:00:00 +0000\r\n\r\nbody %d\r\n%s\r\n", hostileBox, h.next, h.next, h.next, strings.Repeat("x", pad))
		h.srv.Deliver(h.t, "INBOX", []byte(raw))
		nums = append(nums, h.next)
	}
	return nums
}

// events reads every event in the stream, by message number. It reads
// messages directly by sequence, so polling it leaves no consumers behind.
func (h *hostileEnv) events() map[int][]publish.Event {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := map[int][]publish.Event{}
	st, err := h.js.Stream(ctx, "MAIL")
	if err != nil {
		return out
	}
	for seq := st.CachedInfo().State.FirstSeq; seq > 0 && seq <= st.CachedInfo().State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted or not there
		}
		var ev publish.Event
		if json.Unmarshal(m.Data, &ev) != nil || ev.Type != publish.EventType {
			continue
		}
		var n int
		if _, err := fmt.Sscanf(strings.Trim(ev.Data.MessageID, "<>"), "hostile-%d@", &n); err == nil {
			out[n] = append(out[n], ev)
		}
	}
	return out
}

// waitFor waits until every message of nums has an event.
func (h *hostileEnv) waitFor(within time.Duration, what string, nums []int) {
	h.t.Helper()
	wait.For(h.t, within, what, func() bool {
		evs := h.events()
		for _, n := range nums {
			if len(evs[n]) == 0 {
				return false
			}
		}
		return true
	})
}

// record adds the scenario's row. The hostile server has no hook that
// sees actions in order with the stream, so flagged-early is not
// measured here (-1): the simulator scenarios above measure it.
func (h *hostileEnv) record(name string, nums []int) {
	evs := h.events()
	r := row{scenario: name, sent: len(nums), flaggedEarly: -1}
	ids := map[string]bool{}
	for _, n := range nums {
		if len(evs[n]) == 0 {
			r.lost++
			h.t.Errorf("%s: message %d has no event", name, n)
		}
		r.events += len(evs[n])
		if len(evs[n]) > 1 {
			r.duplicates += len(evs[n]) - 1
		}
		for _, ev := range evs[n] {
			ids[ev.ID] = true
		}
	}
	r.distinct = len(ids)
	tableMu.Lock()
	table = append(table, r)
	tableMu.Unlock()
}

func (h *hostileEnv) status() poller.MailboxStatus {
	for _, s := range h.mon.Snapshot() {
		if s.Mailbox == hostileBox {
			return s
		}
	}
	return poller.MailboxStatus{}
}

// TestHostileIMAPServer runs one mailbox through a server that misbehaves
// in a new way in each phase, while mail keeps arriving: every message
// still becomes an event, nothing crashes, waits stay bounded, a hang
// shows in /readyz, and no credential reaches logs or /status.
func TestHostileIMAPServer(t *testing.T) {
	h := newHostileEnv(t)

	// SELECT without UIDNEXT and UIDVALIDITY: once wrapped the checkpoint
	// to last_uid 4294967295 and nothing was published after the first poll.
	h.srv.Misbehave(hostile.Faults{DropUIDNext: true, DropUIDValidity: true})
	first := h.deliver(3, 0)
	h.run()
	h.waitFor(30*time.Second, "events of the mail present at start", first)
	later := h.deliver(3, 0)
	h.waitFor(30*time.Second, "events of the mail that arrived after the first checkpoint", later)
	h.record("IMAP SELECT without UIDNEXT/UIDVALIDITY", append(first, later...))

	// A literal far larger than the message (and than max_message_bytes):
	// once read whole into memory. Now the header is kept, the rest
	// discarded as it arrives, and the event says too_large.
	const pad = 3000
	probe := []byte(fmt.Sprintf("From: a@example.net\r\nTo: %s\r\nSubject: hostile %d\r\nMessage-ID: <hostile-%d@example.net>\r\n"+
		"Date: Wed, 02 Dec 2026 10:00:00 +0000\r\n\r\nbody %d\r\n%s\r\n", hostileBox, h.next+1, h.next+1, h.next+1, strings.Repeat("x", pad)))
	liar := int64(len(probe))
	h.srv.Misbehave(hostile.Faults{BodyLiteral: func(size int64) int64 {
		if size == liar {
			return 256 << 20
		}
		return size
	}})
	big := h.deliver(1, pad)
	small := h.deliver(2, 0)
	h.waitFor(60*time.Second, "events of a 256 MiB literal and of the mail after it", append(big, small...))
	if ev := h.events()[big[0]][0]; !hasProblem(ev, message.ProblemTooLarge) {
		t.Errorf("the 256 MiB literal's event has problems %+v, want too_large", ev.Data.Problems)
	}
	h.record("IMAP 256 MiB literal, 3 KB message", append(big, small...))

	// Throttled with "Suggested Backoff Time: 0 milliseconds": once ~21
	// logins a second. The wait is at least a second and grows.
	throttle := "BAD Request is throttled. Suggested Backoff Time: 0 milliseconds"
	h.srv.Misbehave(hostile.Faults{Reply: map[string]string{"NOOP": throttle, "AUTHENTICATE": throttle}})
	logins, start := h.srv.Logins(), time.Now()
	wait.For(t, 30*time.Second, "three throttled logins", func() bool { return h.srv.Logins()-logins >= 3 })
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Errorf("three logins throttled with a 0 ms suggestion took %v: retried without backing off", took)
	}
	h.srv.Misbehave(hostile.Faults{})
	throttled := h.deliver(3, 0)
	h.waitFor(60*time.Second, "events after the throttling ended", throttled)
	h.record("IMAP throttle, suggested wait 0 ms", throttled)

	// A server that stops answering mid-FETCH: the mailbox is shown
	// stalled and not ready, its connection is closed, and it recovers.
	wait.For(t, 30*time.Second, "caught up before the stall", func() bool { return h.status().State == poller.StateCaughtUp })
	h.srv.Misbehave(hostile.Faults{StallFetch: true})
	stalled := h.deliver(2, 0)
	wait.For(t, 30*time.Second, "the mailbox shown stalled", func() bool { return h.status().Stalled })
	h.srv.Misbehave(hostile.Faults{})
	h.srv.Release()
	h.waitFor(60*time.Second, "events of the mail that arrived during the stall", stalled)
	wait.For(t, 30*time.Second, "the mailbox no longer stalled", func() bool { return !h.status().Stalled })
	h.record("IMAP server stalls mid-FETCH", stalled)

	// A server that echoes the XOAUTH2 initial response (token inside)
	// in its refusal: the log and /status show it scrubbed.
	h.srv.Misbehave(hostile.Faults{EchoAuth: true, Reply: map[string]string{"NOOP": "BYE going away"}})
	wait.For(t, 30*time.Second, "the echoed refusal in /status", func() bool {
		return strings.Contains(h.status().LastError, "XOAUTH2")
	})
	st, _ := json.Marshal(h.mon.Snapshot())
	h.noSecrets(h.logs.String() + string(st))
	if !bytes.Contains(st, []byte("[redacted]")) {
		t.Errorf("/status does not show the echoed response as [redacted]: %s", st)
	}
}

func hasProblem(ev publish.Event, code string) bool {
	for _, p := range ev.Data.Problems {
		if p.Code == code {
			return true
		}
	}
	return false
}
