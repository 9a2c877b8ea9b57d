package publish

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/internal/logtest"
)

func debugLog(w *logtest.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func connectEmbedded(t *testing.T, e config.Embedded, log *slog.Logger) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Connect(ctx, config.NATS{Embedded: e}, log)
	if err != nil {
		t.Fatalf("Connect() = %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestEmbeddedServerRequiresCredentials: the embedded server's TCP port
// turns away a client without credentials and admits one with the NKey
// from the store directory's file, which has mode 0600; the seed appears
// in no log line, even at debug, and the start-up line names the file.
func TestEmbeddedServerRequiresCredentials(t *testing.T) {
	var logs logtest.Buffer
	dir := t.TempDir()
	c := connectEmbedded(t, config.Embedded{Listen: "127.0.0.1:0", StoreDir: dir}, debugLog(&logs))
	url := c.emb.srv.ClientURL()

	if nc, err := nats.Connect(url, nats.RetryOnFailedConnect(false)); err == nil {
		nc.Close()
		t.Fatal("a client without credentials was let in to the embedded server")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("plain connect = %v, want an authorization violation", err)
	}

	path := CredentialsPath(dir)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Fatalf("%s has mode %04o, want 0600", path, m)
	}
	login, err := EmbeddedCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, login, nats.RetryOnFailedConnect(false))
	if err != nil {
		t.Fatalf("connect with the file's credentials = %v", err)
	}
	defer nc.Close()
	if err := nc.Publish("mail.inbound.x.y", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	// ConnectEmbedded, what `check` uses, logs in the same way.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	port := url[strings.LastIndex(url, ":"):]
	other, err := ConnectEmbedded(ctx, config.NATS{Embedded: config.Embedded{Listen: "127.0.0.1" + port, StoreDir: dir}}, debugLog(&logs))
	if err != nil {
		t.Fatalf("ConnectEmbedded() = %v", err)
	}
	other.Close()

	seed := seedIn(t, path)
	c.Close()
	got := logs.String()
	if strings.Contains(got, seed) || strings.Contains(got, seed[10:30]) {
		t.Fatalf("the seed is in the log:\n%s", got)
	}
	if !strings.Contains(got, "credentials_file="+path) {
		t.Errorf("the start-up log does not name the credentials file %s:\n%s", path, got)
	}
	if !strings.Contains(got, "component=nats-server") {
		t.Errorf("the embedded server's own lines are not in the log:\n%s", got)
	}
}

// TestEmbeddedCredentialsKept: the credentials are made once per store
// directory; a restart reuses them, and a file that others may read is
// refused without the seed in the error.
func TestEmbeddedCredentialsKept(t *testing.T) {
	dir := t.TempDir()
	c := connectEmbedded(t, config.Embedded{Listen: "127.0.0.1:0", StoreDir: dir}, nil)
	c.Close()
	first, _ := os.ReadFile(CredentialsPath(dir))
	c = connectEmbedded(t, config.Embedded{Listen: "127.0.0.1:0", StoreDir: dir}, nil)
	c.Close()
	if again, _ := os.ReadFile(CredentialsPath(dir)); string(again) != string(first) {
		t.Fatal("a second start made new credentials")
	}

	if err := os.Chmod(CredentialsPath(dir), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Connect(ctx, config.NATS{Embedded: config.Embedded{Listen: "127.0.0.1:0", StoreDir: dir}}, nil)
	if err == nil {
		c.Close()
		t.Fatal("Connect() used a credentials file with mode 0644")
	}
	if !strings.Contains(err.Error(), "chmod 600") || strings.Contains(err.Error(), seedIn(t, CredentialsPath(dir))) {
		t.Fatalf("Connect() = %v; want the fix, and no seed", err)
	}
}

// TestEmbeddedListenNone: with listen "none" the server has no TCP port and
// no credentials file; the in-process connection works.
func TestEmbeddedListenNone(t *testing.T) {
	dir := t.TempDir()
	c := connectEmbedded(t, config.Embedded{Listen: ListenNone, StoreDir: dir}, nil)
	if addr := c.emb.srv.Addr(); addr != nil {
		t.Fatalf("the embedded server listens on %v", addr)
	}
	if _, err := os.Stat(CredentialsPath(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("credentials file with listen none: %v", err)
	}
	if err := c.SaveState(context.Background(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := EmbeddedClient(config.Embedded{Listen: ListenNone, StoreDir: dir}); err == nil {
		t.Fatal("EmbeddedClient() offers a way in to a server without a port")
	}
}

// seedIn returns the NKey seed line of the credentials file at path.
func seedIn(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "SU") && len(line) > 50 {
			return line
		}
	}
	t.Fatalf("no user seed in %s", path)
	return ""
}
