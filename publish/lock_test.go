package publish

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/config"
)

// TestEmbeddedBusyPort: a taken port is reported at once, naming the key
// to change, not after nats-server's start-up wait.
func TestEmbeddedBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	c, err := Connect(ctx, config.NATS{Embedded: config.Embedded{Listen: ln.Addr().String(), StoreDir: t.TempDir()}}, nil)
	if err == nil {
		c.Close()
		t.Fatal("Connect on a busy port succeeded")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Connect on a busy port took %s", took)
	}
	if !errors.Is(err, ErrEmbeddedStart) || !strings.Contains(err.Error(), "nats.embedded.listen") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Connect on a busy port = %v", err)
	}
}

// TestEmbeddedStoreLocked: a second embedded server on the same store
// directory is refused while the first runs, and allowed once it stopped.
func TestEmbeddedStoreLocked(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := config.NATS{Embedded: config.Embedded{Listen: ListenNone, StoreDir: dir}}
	first, err := Connect(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Connect(ctx, config.NATS{Embedded: config.Embedded{Listen: "127.0.0.1:0", StoreDir: dir}}, nil)
	if err == nil {
		second.Close()
		first.Close()
		t.Fatal("a second embedded server on one store_dir started")
	}
	if !errors.Is(err, ErrStoreInUse) || !strings.Contains(err.Error(), "nats.embedded.store_dir") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second Connect = %v", err)
	}
	first.Close()
	third, err := Connect(ctx, cfg, nil)
	if err != nil {
		t.Fatalf("Connect after the first stopped: %v", err)
	}
	third.Close()
}
