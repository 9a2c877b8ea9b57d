package publish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// The storage guard's timing. Variables so that tests can shorten them.
var (
	guardRetryMin = 500 * time.Millisecond // first wait after a storage failure
	guardRetryMax = 30 * time.Second       // longest wait between two attempts
	guardPoll     = 2 * time.Second        // how often it checks that JetStream is enabled
	guardStable   = time.Minute            // a restart that lasted this long resets the wait
	guardRoom     = int64(1 << 20)         // bytes that must be writable in the store before a restart
)

// storageGuard is the embedded server's way back from a storage failure.
//
// What nats-server v2.15 does when its disk fills: the file store that hit
// ENOSPC keeps the error for good (filestore.go setWriteErr; nothing ever
// clears it), refuses every later write of that stream and answers the
// publisher with nothing, so each publish times out; JetStream itself stays
// enabled in a standalone server. In a cluster, or on a permission error,
// the server shuts JetStream down instead ("will be DISABLED"). Either way
// only a JetStream restart, which reopens every stream from disk, brings
// publishing back. The guard waits for such a failure (a log line from
// serverLog, or JetStream found disabled), warns once, then tries with
// growing waits until the store directory has room again and JetStream
// restarts cleanly, and says so once. The mailbox loops meanwhile back off
// and retry their publishes, so nothing is acted on before its PubAck.
type storageGuard struct {
	kicks chan string // storage failure lines; one pending is enough
}

// kick reports a storage failure without blocking.
func (g *storageGuard) kick(line string) {
	select {
	case g.kicks <- line:
	default:
	}
}

// drain drops failures reported so far.
func (g *storageGuard) drain() {
	for {
		select {
		case <-g.kicks:
		default:
			return
		}
	}
}

// watch runs the guard until ctx ends.
func (e *embedded) watch(ctx context.Context) {
	poll := time.NewTicker(guardPoll)
	defer poll.Stop()
	delay := guardRetryMin
	var recovered time.Time
	for {
		var reason string
		select {
		case <-ctx.Done():
			return
		case reason = <-e.guard.kicks:
		case <-poll.C:
			if e.srv.JetStreamEnabled() {
				continue
			}
			reason = "JetStream is disabled"
		}
		if time.Since(recovered) > guardStable {
			delay = guardRetryMin
		}
		e.log.Warn("JetStream storage failed: publishing stops until the store directory has room again, then JetStream is restarted",
			"component", "nats-server", "store_dir", e.storeDir, "err", reason)
		if !e.recover(ctx, &delay) {
			return
		}
		recovered = time.Now()
		e.log.Info("JetStream restarted after the storage failure; publishing resumes", "component", "nats-server", "store_dir", e.storeDir)
	}
}

// recover waits and retries until JetStream restarted, or ctx ended.
func (e *embedded) recover(ctx context.Context, delay *time.Duration) bool {
	for {
		t := time.NewTimer(*delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		*delay = min(*delay*2, guardRetryMax)
		if err := roomIn(e.storeDir, guardRoom); err != nil {
			e.log.Debug("JetStream store still has no room", "component", "nats-server", "store_dir", e.storeDir, "err", err, "retry_in", *delay)
			continue
		}
		if err := e.restartJetStream(); err != nil {
			e.log.Debug("JetStream restart failed", "component", "nats-server", "store_dir", e.storeDir, "err", err, "retry_in", *delay)
			continue
		}
		return true
	}
}

// restartJetStream stops JetStream if it still runs and starts it again
// with the configuration it started with, which reopens every stream.
func (e *embedded) restartJetStream() error {
	if e.restarting != nil {
		e.restarting(true)
		defer e.restarting(false)
	}
	if e.srv.JetStreamEnabled() {
		if err := e.srv.ShutdownJetStream(); err != nil {
			return fmt.Errorf("stop JetStream: %w", err)
		}
	}
	if e.srv.JetStreamConfig() != nil {
		// Disabled by nats-server itself, which is still shutting it down.
		return errors.New("JetStream is still shutting down")
	}
	// Failures logged up to here were the old streams'; the reopened ones
	// report their own.
	e.guard.drain()
	cfg := e.js
	if err := e.srv.EnableJetStream(&cfg); err != nil {
		return fmt.Errorf("start JetStream: %w", err)
	}
	return nil
}

// roomIn checks that n bytes can be written in dir, by writing them.
func roomIn(dir string, n int64) (err error) {
	f, err := os.CreateTemp(dir, ".room-check-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	buf := make([]byte, 64<<10)
	for left := n; left > 0; left -= int64(len(buf)) {
		if _, err := f.Write(buf[:min(int64(len(buf)), left)]); err != nil {
			return err
		}
	}
	return f.Sync()
}
