package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/internal/wait"
	"github.com/mailpoller/mailpoller/message"
	"github.com/mailpoller/mailpoller/publish"
)

// embeddedConfig writes a config whose embedded server listens on listen
// and stores in dir.
func embeddedConfig(t *testing.T, listen, dir string) string {
	t.Helper()
	cfg := fmt.Sprintf(`nats: {embedded: {listen: %q, store_dir: %q}}
accounts:
  - name: support
    tenant_id: 0f6b3a52-1c3d-4e5f-8a9b-0c1d2e3f4a5b
    client_id: 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d
    client_secret: not-used
    mailbox: support@contoso.test
`, listen, dir)
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTailAndCheckLogInToTheEmbeddedServer: `tail -c` and `check` reach a
// running daemon's embedded server, which requires credentials, with the
// ones in its store directory; with another store they are told why not.
func TestTailAndCheckLogInToTheEmbeddedServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	listen, dir, eventID := daemonWithEvent(t, ctx)

	path := embeddedConfig(t, listen, dir)
	var out syncBuf
	tctx, tcancel := context.WithCancel(ctx)
	done := make(chan int)
	go func() { done <- runTail(tctx, []string{"-c", path, "-all"}, &out, &out) }()
	wait.For(t, 10*time.Second, "tail prints the event", func() bool { return strings.Contains(out.String(), "id="+eventID) })
	tcancel()
	if code := <-done; code != 0 {
		t.Fatalf("tail exit %d:\n%s", code, out.String())
	}

	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if r := checkNATS(ctx, cfg, 5*time.Second); !r.OK || !strings.Contains(r.Detail, "stream MAIL") {
		t.Fatalf("check of the running embedded server: %+v", r)
	}

	// A config with another store has no credentials for this server.
	var errOut syncBuf
	if code := runTail(ctx, []string{"-c", embeddedConfig(t, listen, t.TempDir())}, &errOut, &errOut); code != 1 {
		t.Fatalf("tail without credentials: exit %d:\n%s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "credentials file does not exist") {
		t.Fatalf("tail without credentials says:\n%s", errOut.String())
	}
}

// daemonWithEvent starts an embedded server on a free port with its own
// store, as a running daemon would, and publishes one event to it. The
// server stops with the test.
func daemonWithEvent(t *testing.T, ctx context.Context) (listen, dir, eventID string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen = ln.Addr().String()
	ln.Close()
	dir = t.TempDir()
	daemon, err := publish.Connect(ctx, config.NATS{Embedded: config.Embedded{Listen: listen, StoreDir: dir}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(daemon.Close)
	o := publish.Origin{Account: "support", Mailbox: "support@contoso.test", Folder: "INBOX", Protocol: "imap", ServerID: "1:1"}
	ev := publish.NewEvent(o, &message.Message{Subject: "Printer jammed"}, time.Now())
	if _, err := daemon.Publish(ctx, publish.Subject(daemon.Prefix(), o.Account, o.Mailbox), ev, nil); err != nil {
		t.Fatal(err)
	}
	return listen, dir, ev.ID
}
