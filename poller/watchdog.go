package poller

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// StateStalled is shown while a mailbox's server has stopped answering:
// its connection is closed and it reconnects.
const StateStalled = "stalled"

// watchdog closes a mailbox's source when the mailbox makes no progress
// for too long, so a server that stops answering (or a read that never
// returns) cannot hold a mailbox forever while it looks healthy. The
// worker arms it around each poll and each wait and kicks it on
// progress; the timer's goroutine only reports and closes.
type watchdog struct {
	mu    sync.Mutex
	t     *time.Timer
	gen   int // which arm the timer belongs to
	op    string
	d     time.Duration
	fired error // why the source was closed, until the next arm
}

// arm watches op: unless kicked or disarmed within d, fire reports the
// stall and end cuts op short (cancels its context, closes its source).
func (wd *watchdog) arm(op string, d time.Duration, fire func(error), end func()) {
	wd.mu.Lock()
	defer wd.mu.Unlock()
	if wd.t != nil {
		wd.t.Stop()
	}
	wd.gen++
	gen := wd.gen
	wd.op, wd.d, wd.fired = op, d, nil
	wd.t = time.AfterFunc(d, func() {
		wd.mu.Lock()
		if wd.gen != gen || wd.t == nil {
			wd.mu.Unlock()
			return
		}
		err := fmt.Errorf("no progress for %s while %s: %w", d, op, errStalled)
		wd.fired = err
		wd.mu.Unlock()
		fire(err)
		end()
	})
}

// kick pushes the deadline of the current op back by its full length.
func (wd *watchdog) kick() {
	wd.mu.Lock()
	defer wd.mu.Unlock()
	if wd.t != nil && wd.fired == nil {
		wd.t.Reset(wd.d)
	}
}

// disarm stops watching and returns why the source was closed, if the
// watchdog closed it.
func (wd *watchdog) disarm() error {
	wd.mu.Lock()
	defer wd.mu.Unlock()
	if wd.t != nil {
		wd.t.Stop()
	}
	wd.t = nil
	return wd.fired
}

// errStalled marks a mailbox whose server stopped answering.
var errStalled = errors.New("the server stopped answering")

// isStall reports whether err is a read or request that timed out: the
// server (or something between) stopped answering.
func isStall(err error) bool {
	if errors.Is(err, errStalled) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
