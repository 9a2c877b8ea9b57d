package poller

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/publish"
)

// Lease timing defaults: a holder renews every TTL/3; a dead holder's
// mailboxes are free again TTL after its last renewal.
const defaultLeaseTTL = 30 * time.Second

// errLeaseLost ends a mailbox's work when another instance took its lease
// or renewals failed for too long.
var errLeaseLost = errors.New("lease lost")

// leases claims mailboxes in the lease bucket so that several instances
// sharing one config and one NATS poll each mailbox exactly once.
type leases struct {
	kv       jetstream.KeyValue
	owner    string
	ttl      time.Duration
	mu       sync.Mutex
	held     map[string]bool
	total    int // mailboxes in the config
	peers    int // live instances, this one included
	lastSeen time.Time
}

type lease struct {
	ls   *leases
	key  string
	rev  uint64
	sent time.Time // when the last write that went through was sent
}

func newLeases(ctx context.Context, nc *publish.Conn, owner string, ttl time.Duration) (*leases, error) {
	if ttl <= 0 {
		ttl = defaultLeaseTTL
	}
	kv, err := nc.Leases(ctx, ttl)
	if err != nil {
		return nil, err
	}
	return &leases{kv: kv, owner: owner, ttl: ttl, held: map[string]bool{}, peers: 1}, nil
}

func leaseKey(mb config.Mailbox) string {
	return "mailbox." + publish.StateKey(mb.Account.Name, mb.Address, mb.Folder)
}

// tryAcquire takes the lease if it is free or already ours (a restart with
// the same instance name). It returns the current holder when it is not.
func (ls *leases) tryAcquire(ctx context.Context, key string) (*lease, string, error) {
	sent := time.Now()
	rev, err := ls.kv.Create(ctx, key, []byte(ls.owner))
	if err == nil {
		ls.setHeld(key, true)
		return &lease{ls: ls, key: key, rev: rev, sent: sent}, "", nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, "", fmt.Errorf("acquire lease %s: %w", key, err)
	}
	e, err := ls.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, "", nil // freed in between: try again next round
	}
	if err != nil {
		return nil, "", fmt.Errorf("read lease %s: %w", key, err)
	}
	holder := string(e.Value())
	if holder != ls.owner {
		return nil, holder, nil
	}
	sent = time.Now()
	rev, err = ls.kv.Update(ctx, key, []byte(ls.owner), e.Revision())
	if err != nil {
		return nil, holder, nil
	}
	ls.setHeld(key, true)
	return &lease{ls: ls, key: key, rev: rev, sent: sent}, "", nil
}

func (ls *leases) setHeld(key string, on bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if on {
		ls.held[key] = true
	} else {
		delete(ls.held, key)
	}
}

// share is how many mailboxes this instance should hold at most.
func (ls *leases) share() int {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return int(math.Ceil(float64(ls.total) / float64(max(ls.peers, 1))))
}

// wantMore reports whether this instance is below its share.
func (ls *leases) wantMore() bool {
	n := ls.heldCount()
	return n < ls.share()
}

func (ls *leases) heldCount() int {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return len(ls.held)
}

// shouldShed reports whether key is one of the mailboxes this instance holds
// beyond its share (the highest keys go first, so all holders agree).
func (ls *leases) shouldShed(key string) bool {
	share := ls.share()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if len(ls.held) <= share {
		return false
	}
	keys := make([]string, 0, len(ls.held))
	for k := range ls.held {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return slices.Index(keys, key) >= share
}

// heartbeat announces this instance and counts the live ones, until ctx ends.
func (ls *leases) heartbeat(ctx context.Context) {
	key := "instance." + publish.KeyToken(ls.owner)
	for {
		ls.kv.Put(ctx, key, []byte(ls.owner))
		if keys, err := ls.kv.ListKeysFiltered(ctx, "instance.>"); err == nil {
			n := 0
			for range keys.Keys() {
				n++
			}
			ls.mu.Lock()
			ls.peers = max(n, 1)
			ls.mu.Unlock()
		}
		if !sleep(ctx, ls.ttl/3) {
			ctx2, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			ls.kv.Delete(ctx2, key)
			cancel()
			return
		}
	}
}

// keep renews l until ctx ends (nil) or the lease is lost (errLeaseLost).
// The first time l is among the mailboxes this instance holds beyond its
// share, it calls shed once and renews on: the work stops gracefully, and
// the lease stays ours until it has.
//
// The bucket drops an entry ttl after the server stored it, and the server
// stores it after the write was sent: the lease is ours until sent+ttl at
// least. keep gives it up at sent+2/3 ttl unless a renewal has gone through
// by then, so that the work has a third of the ttl to stop before another
// instance can take the mailbox. Each renewal waits no longer than that: a
// NATS request that hangs (a node dying, a leader election) must not keep
// the work going past it.
func (l *lease) keep(ctx context.Context, shed func()) error {
	every := l.ls.ttl / 3
	wait := every
	var lastErr error
	for {
		giveUp := l.sent.Add(l.ls.ttl * 2 / 3)
		if !sleep(ctx, min(wait, max(time.Until(giveUp), 0))) {
			return nil
		}
		if shed != nil && l.ls.shouldShed(l.key) {
			shed()
			shed = nil
		}
		if !time.Now().Before(giveUp) {
			return fmt.Errorf("%w: no renewal went through in %s: %v", errLeaseLost, l.ls.ttl*2/3, lastErr)
		}
		sent := time.Now()
		rctx, cancel := context.WithDeadline(ctx, giveUp)
		rev, err := l.ls.kv.Update(rctx, l.key, []byte(l.ls.owner), l.rev)
		cancel()
		switch {
		case err == nil:
			l.rev, l.sent, wait = rev, sent, every
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound):
			return fmt.Errorf("%w: %v", errLeaseLost, err) // taken, or expired
		case publish.Missing(err):
			// No server has the bucket: once it is made again, empty,
			// anyone may claim the mailbox.
			return fmt.Errorf("%w: the lease bucket is gone: %v", errLeaseLost, err)
		default:
			lastErr, wait = err, every/4 // try again sooner
		}
	}
}

// release frees the lease at once (on clean stop), if it is still ours.
func (l *lease) release() {
	l.ls.setHeld(l.key, false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	l.ls.kv.Delete(ctx, l.key, jetstream.LastRevision(l.rev))
}
