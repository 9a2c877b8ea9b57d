package faults

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailpoller/mailpoller/internal/logtest"
	"github.com/mailpoller/mailpoller/internal/wait"
	"github.com/mailpoller/mailpoller/poller"
	"github.com/mailpoller/mailpoller/publish"
	"github.com/mailpoller/mailpoller/sim"
)

// run starts the poller in-process until the returned stop is called.
func (e *env) run(extra string, logs *logtest.Buffer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	cfg := e.config(extra)
	e.t.Cleanup(func() {
		if e.t.Failed() {
			e.t.Logf("the run's warnings and its last lines:\n%s", failureLog(logs.String()))
		}
	})
	go func() {
		defer close(done)
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		nc, err := publish.Connect(cctx, cfg.NATS, debugLog(logs))
		ccancel()
		if err != nil {
			e.t.Errorf("publish.Connect: %v", err)
			return
		}
		defer nc.Close()
		poller.Run(ctx, poller.Options{Config: cfg, NATS: nc, Logger: debugLog(logs), Grace: 5 * time.Second})
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			e.t.Fatal("poller did not stop within 30s")
		}
	}
	e.t.Cleanup(stop)
	return stop
}

func (e *env) waitAll(within time.Duration) {
	e.t.Helper()
	e.mu.Lock()
	n := len(e.sent)
	e.mu.Unlock()
	wait.For(e.t, within, fmt.Sprintf("%d events", n), func() bool { return e.streamCount() >= n })
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mailpoller")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/mailpoller/mailpoller/cmd/mailpoller")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestKillAndRestart SIGKILLs `mailpoller run` at random points of a run of
// 2,000 messages and restarts it, then finishes with `run --once`.
func TestKillAndRestart(t *testing.T) {
	e := newEnv(t, "support@contoso.test", "billing@contoso.test")
	e.deliver(1000)
	killAndRestart(t, e, 5, 100, 250)
	e.verify("SIGKILL x5 during 2000 messages", true)
}

// TestGraphKillAndRestart is TestKillAndRestart over Microsoft Graph
// (delta links as checkpoints, mark read in $batch): 600 messages, three
// SIGKILLs at random points, then `run --once`.
func TestGraphKillAndRestart(t *testing.T) {
	e := newEnv(t, "support@contoso.test", "billing@contoso.test")
	e.protocol = "graph"
	e.deliver(300)
	killAndRestart(t, e, 3, 50, 100)
	e.verify("Graph: SIGKILL x3 during 600 messages", true)
}

// killAndRestart runs `mailpoller run` on e's config and SIGKILLs it kills
// times, each after at least step (plus up to jitter) more events, then
// finishes with `run --once`; no secret may show in its output.
func killAndRestart(t *testing.T, e *env, kills, step, jitter int) {
	t.Helper()
	total := len(e.sent)
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(cfgPath, []byte(e.yaml("")), 0o600)
	bin := buildBinary(t)
	var logs logtest.Buffer
	for kill := 1; kill <= kills; kill++ {
		cmd := exec.Command(bin, "run", "-c", cfgPath)
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		target := e.streamCount() + step + rand.N(jitter)
		wait.For(t, 90*time.Second, fmt.Sprintf("kill %d: stream reaches %d", kill, target), func() bool {
			return e.streamCount() >= min(target, total)
		})
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
	cmd := exec.Command(bin, "run", "-c", cfgPath, "--once")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Run(); err != nil {
		t.Fatalf("final run --once: %v\n%s", err, tail(logs.String()))
	}
	e.noSecrets(logs.String())
}

func tail(s string) string {
	if len(s) > 3000 {
		return s[len(s)-3000:]
	}
	return s
}

// TestNATSOutage stops the NATS server mid-run and starts it again.
func TestNATSOutage(t *testing.T) {
	e := newEnv(t, "support@contoso.test", "billing@contoso.test")
	e.deliver(300)
	var logs logtest.Buffer
	stop := e.run("", &logs)
	wait.For(t, 60*time.Second, "first 100 events", func() bool { return e.streamCount() >= 100 })
	e.nats.stop()
	wait.For(t, 30*time.Second, "poller notices NATS is gone", func() bool {
		return strings.Contains(logs.String(), "NATS unavailable") || strings.Contains(logs.String(), "NATS disconnected")
	})
	e.nats.start()
	e.waitAll(90 * time.Second)
	stop()
	e.verify("NATS down mid-run, then back", true)
	e.noSecrets(logs.String())
}

// TestStreamFull fills the stream's limit: the poller waits, flags
// nothing it could not publish, and finishes once the limit is raised.
func TestStreamFull(t *testing.T) {
	e := newEnv(t, "support@contoso.test")
	ctx := context.Background()
	if _, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: "MAIL", Subjects: []string{"mail.inbound.>"},
		MaxMsgs: 40, Discard: jetstream.DiscardNew, Storage: jetstream.FileStorage, Duplicates: time.Hour}); err != nil {
		t.Fatal(err)
	}
	e.deliver(120)
	var logs logtest.Buffer
	stop := e.run("", &logs)
	wait.For(t, 60*time.Second, "stream full", func() bool { return e.streamCount() == 40 && strings.Contains(logs.String(), "NATS unavailable") })
	e.mu.Lock()
	for _, a := range e.actions {
		if a.lastSeq == 0 {
			t.Errorf("%s acted on without its event", a.key)
		}
	}
	acted := len(e.actions)
	e.mu.Unlock()
	if acted > 40 {
		t.Fatalf("%d messages marked read with only 40 events stored", acted)
	}
	st, _ := e.js.Stream(ctx, "MAIL")
	cfg := st.CachedInfo().Config
	cfg.MaxMsgs = -1
	if _, err := e.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	e.waitAll(90 * time.Second)
	stop()
	e.verify("stream full (DiscardNew), then raised", true)
}

// TestIMAPFaults injects Exchange's throttling, "not connected", token
// expiry BYE and a connection dropped mid-FETCH.
func TestIMAPFaults(t *testing.T) {
	e := newEnv(t, "support@contoso.test", "billing@contoso.test")
	e.deliver(200)
	e.sim.ThrottleIMAP("support@contoso.test", 3, 300*time.Millisecond)
	e.sim.NotConnected("billing@contoso.test", 2)
	e.sim.DropFetch("support@contoso.test", 2)
	var logs logtest.Buffer
	stop := e.run("", &logs)
	wait.For(t, 60*time.Second, "first 50 events", func() bool { return e.streamCount() >= 50 })
	e.sim.ExpireSessions("billing@contoso.test")
	e.sim.ExpireSessions("support@contoso.test")
	e.waitAll(90 * time.Second)
	stop()
	e.verify("IMAP throttle/BYE/drop/not-connected", true)
	if n := e.sim.IMAPConnections(); n > 20 {
		t.Errorf("%d IMAP connections for 9 injected faults: reconnect loop", n)
	}
	if n := e.sim.TokenRequests(appA); n > 2 {
		t.Errorf("%d token requests: tokens are not reused across reconnects", n)
	}
	if !strings.Contains(logs.String(), "suggested backoff 300ms") {
		t.Errorf("the throttling reply was not logged with its backoff")
	}
	e.noSecrets(logs.String())
}

// TestGraphFaults injects Graph's faults during a run of 400 messages:
// 429s with and without Retry-After, 503s, a delta token Graph forgets
// mid-run, and a 401 for a token Graph no longer accepts. Nothing is lost,
// nothing is marked read before its PubAck, and the waits Graph asked for
// are kept (measured at the server).
func TestGraphFaults(t *testing.T) {
	e := newEnv(t, "support@contoso.test", "billing@contoso.test")
	e.protocol = "graph"
	e.deliver(200)
	g := e.sim.Graph()
	g.Throttle("support@contoso.test", 3, 300*time.Millisecond)
	g.Throttle("billing@contoso.test", 2, 0)
	g.Unavailable("billing@contoso.test", 2, 200*time.Millisecond)
	var logs logtest.Buffer
	stop := e.run("", &logs)
	wait.For(t, 60*time.Second, "first 50 events", func() bool { return e.streamCount() >= 50 })
	g.ExpireDelta("support@contoso.test")
	g.Unauthorized(1)
	e.waitAll(120 * time.Second)
	stop()
	e.verify("Graph 429/503/expired delta/401", true)
	for _, ev := range g.Throttled("support@contoso.test") {
		if !ev.NextArrival.IsZero() && ev.NextArrival.Sub(ev.Sent) < ev.RetryAfter {
			t.Errorf("next request %s after a %d with Retry-After %s", ev.NextArrival.Sub(ev.Sent), ev.Status, ev.RetryAfter)
		}
	}
	for _, box := range []string{"support@contoso.test", "billing@contoso.test"} {
		if mx := g.MaxInFlight(box); mx > 4 {
			t.Errorf("%s: %d requests in flight, Graph allows 4", box, mx)
		}
	}
	if n := e.sim.TokenRequests(appA); n > 3 {
		t.Errorf("%d token requests for one 401: tokens are not reused", n)
	}
	e.noSecrets(logs.String())
}

// TestTokenFaults: one app's token endpoint answers 503 twice (transient:
// retried), another app has a wrong secret (a config error: logged once
// with the fix, not retried in a storm); the healthy account is not held up.
func TestTokenFaults(t *testing.T) {
	e := newEnv(t, "support@contoso.test", "billing@contoso.test")
	e.sim.Store().AddMailbox("hr@contoso.test")
	e.sim.Store().Deliver("hr@contoso.test", "INBOX", sim.Generate("hr@contoso.test", 1), time.Now())
	e.deliver(50)
	e.sim.FailTokens(sim.TokenFault{ClientID: appA, Status: 503}, 2)
	broken := fmt.Sprintf(`  - name: hr
    tenant_id: %s
    client_id: %s
    client_secret: wrong-secret-id-not-value
    authority: %s
    server: %s
    tls: {ca_file: %s}
    mailbox: hr@contoso.test
`, tenant, appB, e.sim.Endpoints().Authority, e.sim.Endpoints().IMAP, e.sim.Endpoints().CAFile)
	var logs logtest.Buffer
	stop := e.run(broken, &logs)
	e.waitAll(60 * time.Second)
	stop()
	e.verify("token 503 x2 + another app misconfigured", true)
	if n := e.sim.TokenRequests(appB); n != 1 {
		t.Errorf("misconfigured app made %d token requests, want 1 (no retry storm)", n)
	}
	if n := strings.Count(logs.String(), "AADSTS7000215"); n != 1 {
		t.Errorf("the config error was logged %d times, want once", n)
	}
	if !strings.Contains(logs.String(), "Secret ID") {
		t.Errorf("the config error's fix is not in the log")
	}
	e.noSecrets(logs.String())
}

// bigMessage builds a message with attachments of the given sizes.
func bigMessage(subject string, sizes ...int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: a@example.net\r\nTo: support@contoso.test\r\nSubject: %s\r\nMessage-ID: <%s@example.net>\r\n"+
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n", subject, strings.ReplaceAll(subject, " ", "-"))
	for i, n := range sizes {
		data := bytes.Repeat([]byte{byte('a' + i)}, n)
		enc := base64.StdEncoding.EncodeToString(data)
		fmt.Fprintf(&b, "--XX\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=part%d.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n", i)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
	}
	b.WriteString("--XX--\r\n")
	return b.Bytes()
}

// TestLargeMail: multi-MB mail goes to the object store and the event fits
// NATS' max payload; mail over max_message_bytes becomes a too_large event.
func TestLargeMail(t *testing.T) {
	e := newEnv(t, "support@contoso.test")
	box := e.boxes[0]
	for _, raw := range [][]byte{bigMessage("three megabytes", 1400<<10, 1400<<10), bigMessage("twelve megabytes", 9<<20), sim.Generate(box, 1)} {
		m, _ := e.sim.Store().Deliver(box, "INBOX", raw, time.Now())
		e.sent[fmt.Sprintf("%s/%d:%d", box, e.uidv[box], m.UID)] = true
	}
	var logs logtest.Buffer
	stop := e.run("    max_message_bytes: 8MiB\n", &logs)
	e.waitAll(60 * time.Second)
	stop()
	e.verify("3 MB and 12 MB mail (limit 8 MiB)", true)
	ctx := context.Background()
	cons, _ := e.js.OrderedConsumer(ctx, "MAIL", jetstream.OrderedConsumerConfig{})
	for range 3 {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Data()) > 1<<20 {
			t.Errorf("event of %d bytes exceeds the 1 MB max payload", len(m.Data()))
		}
		var ev publish.Event
		json.Unmarshal(m.Data(), &ev)
		switch ev.Data.Subject {
		case "three megabytes":
			if len(ev.Data.Attachments) != 2 || ev.Data.Attachments[0].Blob == nil || ev.Data.Raw == nil {
				t.Errorf("3 MB mail: attachments %+v, raw %v: want blobs", ev.Data.Attachments, ev.Data.Raw)
			}
		case "twelve megabytes":
			if len(ev.Data.Problems) == 0 || ev.Data.Problems[len(ev.Data.Problems)-1].Code != "too_large" || ev.Data.Size < 12<<20 {
				t.Errorf("12 MB mail: problems %+v size %d, want too_large and the real size", ev.Data.Problems, ev.Data.Size)
			}
		}
	}
}

// TestPoisonMessage: the server refuses one message every time; it goes to
// the dead-letter subject, stays unread, and the mailbox moves on.
func TestPoisonMessage(t *testing.T) {
	e := newEnv(t, "support@contoso.test")
	box := e.boxes[0]
	poison := e.deliverPoison(box, 20, 7)
	var logs logtest.Buffer
	stop := e.run("", &logs)
	e.waitAll(60 * time.Second)
	ctx := context.Background()
	wait.For(t, 30*time.Second, "dead letter published", func() bool {
		st, err := e.js.Stream(ctx, "MAIL")
		if err != nil {
			return false
		}
		info, err := st.Info(ctx, jetstream.WithSubjectFilter("mail.inbound.deadletter.>"))
		return err == nil && len(info.State.Subjects) > 0
	})
	stop()
	e.verify("poison message (FETCH NO every time)", true)
	msgs, _ := e.sim.Store().Messages(box, "INBOX")
	for _, m := range msgs {
		if m.UID == poison && m.Seen() {
			t.Fatal("the dead-lettered message was marked read")
		}
	}
	st, _ := e.js.Stream(ctx, "MAIL")
	m, err := st.GetLastMsgForSubject(ctx, "mail.inbound.deadletter.support.support_at_contoso_test")
	if err != nil {
		t.Fatalf("no dead letter: %v", err)
	}
	var dl publish.DeadLetter
	json.Unmarshal(m.Data, &dl)
	if dl.ServerID != fmt.Sprintf("%d:%d", e.uidv[box], poison) || !strings.Contains(dl.Reason, "could not be converted") {
		t.Fatalf("dead letter = %+v", dl)
	}
}

// TestSIGTERM: a clean stop lets the batch in flight finish and exits 0;
// the next run picks up where it stopped.
func TestSIGTERM(t *testing.T) {
	e := newEnv(t, "support@contoso.test", "billing@contoso.test")
	e.deliver(400)
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(cfgPath, []byte(e.yaml("")), 0o600)
	bin := buildBinary(t)
	var logs logtest.Buffer
	cmd := exec.Command(bin, "run", "-c", cfgPath)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 60*time.Second, "first 100 events", func() bool { return e.streamCount() >= 100 })
	cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, tail(logs.String()))
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("mailpoller did not exit within 20s of SIGTERM")
	}
	once := exec.Command(bin, "run", "-c", cfgPath, "--once")
	once.Stdout, once.Stderr = &logs, &logs
	if err := once.Run(); err != nil {
		t.Fatalf("run --once after SIGTERM: %v", err)
	}
	e.verify("SIGTERM mid-run, then --once", true)
}

// TestQuarantine: with quarantine set, the poison message is moved aside.
func TestQuarantine(t *testing.T) {
	e := newEnv(t, "support@contoso.test")
	box := e.boxes[0]
	poison := e.deliverPoison(box, 5, 3)
	var logs logtest.Buffer
	stop := e.run("    quarantine: Unreadable\n", &logs)
	e.waitAll(60 * time.Second)
	wait.For(t, 30*time.Second, "poison moved to Unreadable", func() bool {
		q, err := e.sim.Store().Messages(box, "Unreadable")
		return err == nil && len(q) == 1
	})
	stop()
	inbox, _ := e.sim.Store().Messages(box, "INBOX")
	for _, m := range inbox {
		if m.UID == poison {
			t.Fatal("the poison message is still in INBOX")
		}
	}
}

// TestSIGHUPReload: SIGHUP makes a running daemon pick up a mailbox added
// to its config file; an invalid file is refused and the daemon goes on.
func TestSIGHUPReload(t *testing.T) {
	e := newEnv(t, "support@contoso.test", "billing@contoso.test")
	e.deliver(5)
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	e.boxes = e.boxes[:1] // start with support only
	os.WriteFile(cfgPath, []byte(e.yaml("")), 0o600)
	bin := buildBinary(t)
	var logs logtest.Buffer
	cmd := exec.Command(bin, "run", "-c", cfgPath)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	wait.For(t, 60*time.Second, "support's 5 events", func() bool { return e.streamCount() >= 5 })
	os.WriteFile(cfgPath, []byte("accounts: [\n"), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	wait.For(t, 30*time.Second, "invalid config refused", func() bool { return strings.Contains(logs.String(), "config reload rejected") })
	e.boxes = []string{"support@contoso.test", "billing@contoso.test"}
	os.WriteFile(cfgPath, []byte(e.yaml("")), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	wait.For(t, 60*time.Second, "billing's events after the reload", func() bool { return e.streamCount() >= 10 })
	if strings.Contains(logs.String(), "mailbox stopping (config changed)") {
		t.Error("the unchanged mailbox was restarted by the reload")
	}
	e.verify("SIGHUP adds a mailbox", true)
}

// failureLog is what a failed test shows of a run's log: every line at
// WARN or above, then the last 60 lines.
func failureLog(all string) string {
	lines := strings.Split(strings.TrimRight(all, "\n"), "\n")
	var b strings.Builder
	for _, l := range lines {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			b.WriteString(l + "\n")
		}
	}
	b.WriteString("--- last lines ---\n")
	b.WriteString(strings.Join(lines[max(0, len(lines)-60):], "\n"))
	return b.String()
}
