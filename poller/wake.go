package poller

import (
	"context"
	"sync"
	"time"
)

// waker lets the runner cut a mailbox's backoff short (a SIGHUP after an
// admin fixed a permission). Only a wait in progress is cut: a wake with
// nobody waiting does nothing, so healthy mailboxes are undisturbed. It is
// safe for concurrent use.
type waker struct {
	mu sync.Mutex
	ch chan struct{} // open while the mailbox backs off; nil otherwise
}

// sleep waits d, until ctx is done, or until wake; live reports whether
// ctx is still live (d elapsed or woken), woken whether wake ended it.
func (k *waker) sleep(ctx context.Context, d time.Duration) (live, woken bool) {
	ch := make(chan struct{})
	k.mu.Lock()
	k.ch = ch
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		if k.ch == ch {
			k.ch = nil
		}
		k.mu.Unlock()
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false, false
	case <-t.C:
		return true, false
	case <-ch:
		return true, true
	}
}

// wake ends the wait in progress, if any, and reports whether there was one.
func (k *waker) wake() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ch == nil {
		return false
	}
	close(k.ch)
	k.ch = nil
	return true
}
