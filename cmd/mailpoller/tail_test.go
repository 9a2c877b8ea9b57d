package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/internal/wait"
	"github.com/mailpoller/mailpoller/message"
	"github.com/mailpoller/mailpoller/publish"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestTail publishes an event and a dead letter and reads them back as
// one-line summaries through `tail`.
func TestTail(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := publish.Connect(ctx, config.NATS{Embedded: config.Embedded{Listen: "127.0.0.1:0", StoreDir: t.TempDir()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	raw := []byte("From: Ada <ada@example.net>\r\nSubject: Printer jammed\r\nAuto-Submitted: auto-replied\r\n\r\nhi\r\n")
	o := publish.Origin{Account: "support", Mailbox: "support@contoso.test", Folder: "INBOX", Protocol: "imap", ServerID: "1:1"}
	ev := publish.NewEvent(o, message.Parse(raw, nil), time.Now())
	if _, err := nc.Publish(ctx, publish.Subject(nc.Prefix(), o.Account, o.Mailbox), ev, raw); err != nil {
		t.Fatal(err)
	}
	dl := &publish.DeadLetter{ID: "x", Account: "support", Mailbox: o.Mailbox, ServerID: "1:2", Reason: "server refused UID FETCH 2"}
	if err := nc.PublishDeadLetter(ctx, publish.DeadLetterSubject(nc.Prefix(), o.Account, o.Mailbox), dl); err != nil {
		t.Fatal(err)
	}
	var out syncBuf
	tctx, tcancel := context.WithCancel(ctx)
	done := make(chan int)
	go func() { done <- tail(tctx, nc.NATS(), nc.Stream(), "mail.inbound.>", true, false, &out, &out) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "DEAD LETTER") {
		if time.Now().After(deadline) {
			t.Fatalf("tail printed:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond) // polling the output under a deadline
	}
	tcancel()
	if code := <-done; code != 0 {
		t.Fatalf("tail exit %d", code)
	}
	got := out.String()
	for _, want := range []string{"support/support@contoso.test", "Ada <ada@example.net>", `"Printer jammed"`, "[auto_reply]", "id=" + ev.ID,
		"DEAD LETTER support/support@contoso.test 1:2: server refused UID FETCH 2"} {
		if !strings.Contains(got, want) {
			t.Errorf("tail output lacks %q:\n%s", want, got)
		}
	}
}

// TestTailURLWithoutConfig: `tail --url … --nkey FILE` reads events from a
// server that requires a login, with no config file (none exists in the
// working directory) and no account secret in the environment.
func TestTailURLWithoutConfig(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	listen, dir, eventID := daemonWithEvent(t, ctx)
	t.Chdir(t.TempDir()) // no mailpoller.yaml here
	t.Setenv("MAILPOLLER_CONFIG", filepath.Join(t.TempDir(), "missing.yaml"))

	var out syncBuf
	tctx, tcancel := context.WithCancel(ctx)
	done := make(chan int)
	go func() {
		done <- runTail(tctx, []string{"--url", "nats://" + listen, "--nkey", publish.CredentialsPath(dir), "--all"}, &out, &out)
	}()
	wait.For(t, 10*time.Second, "tail --url prints the event", func() bool { return strings.Contains(out.String(), "id="+eventID) })
	tcancel()
	if code := <-done; code != 0 {
		t.Fatalf("tail exit %d:\n%s", code, out.String())
	}

	// Without the login the server refuses, and tail says so.
	var errOut syncBuf
	if code := runTail(ctx, []string{"--url", "nats://nobody:wrong@" + listen}, &errOut, &errOut); code != 1 {
		t.Fatalf("tail with a wrong login: exit %d:\n%s", code, errOut.String())
	}
	if got := errOut.String(); !strings.Contains(strings.ToLower(got), "authorization violation") || strings.Contains(got, "wrong") {
		t.Fatalf("tail with a wrong login says:\n%s", got)
	}
}
