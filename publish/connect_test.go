package publish

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/internal/logtest"
	"github.com/mailpoller/mailpoller/internal/natstest"
	"github.com/mailpoller/mailpoller/internal/wait"
)

// TestConnectWaitsForServer: with nothing listening at nats.url, Connect
// logs the URL (without its login) and the real cause, retries, and
// connects once a server is there.
func TestConnectWaitsForServer(t *testing.T) {
	port := natstest.FreePort(t)
	var logs logtest.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var failures atomic.Int32
	url := "nats://ops:s3cret@127.0.0.1:" + strconv.Itoa(port)
	type result struct {
		c   *Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ConnectNotify(ctx, config.NATS{URL: url}, debugLog(&logs), func(error) { failures.Add(1) })
		done <- result{c, err}
	}()
	wait.For(t, 10*time.Second, "two failed attempts", func() bool { return failures.Load() >= 2 })
	natstest.Server(t, port, t.TempDir())
	r := <-done
	if r.err != nil {
		t.Fatalf("Connect after the server came up: %v", r.err)
	}
	defer r.c.Close()
	got := logs.String()
	for _, want := range []string{"NATS not reachable; retrying", "url=nats://[redacted]@127.0.0.1:" + strconv.Itoa(port), "connection refused", "fix=", "NATS reachable"} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "s3cret") {
		t.Errorf("log holds the password:\n%s", got)
	}
}

// TestConnectGivesUpWithCause: when ctx ends before NATS is there, the
// error is the cause (connection refused, DNS), not a context deadline.
func TestConnectGivesUpWithCause(t *testing.T) {
	for _, tc := range []struct{ name, url, want string }{
		{"refused", "nats://127.0.0.1:" + strconv.Itoa(natstest.FreePort(t)), "connection refused"},
		{"dns", "nats://nats.invalid:4222", "lookup nats.invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			c, err := Connect(ctx, config.NATS{URL: tc.url}, debugLog(&logtest.Buffer{}))
			if err == nil {
				c.Close()
				t.Fatal("Connect succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.url) || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Connect() = %v, want the URL and %q", err, tc.want)
			}
		})
	}
}
