package publish

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StateKey is the KV key of one (account, mailbox, folder) checkpoint.
// KV keys allow [-/_=.a-zA-Z0-9]; other bytes are hex-escaped as "=XX".
func StateKey(account, mailbox, folder string) string {
	return escapeKey(account) + "." + escapeKey(strings.ToLower(mailbox)) + "." + escapeKey(folder)
}

// KeyToken makes s usable as one token of a KV key.
func KeyToken(s string) string { return escapeKey(s) }

func escapeKey(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9', ch == '-', ch == '_':
			b.WriteByte(ch)
		default:
			fmt.Fprintf(&b, "=%02X", ch)
		}
	}
	return b.String()
}

// LoadState returns the checkpoint stored under key, or nil if there is none.
func (c *Conn) LoadState(ctx context.Context, key string) ([]byte, error) {
	e, err := c.state.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		c.heal(ctx, err)
		return nil, fmt.Errorf("load checkpoint %s: %w", key, err)
	}
	return e.Value(), nil
}

// SaveState stores the checkpoint under key.
func (c *Conn) SaveState(ctx context.Context, key string, state []byte) error {
	if _, err := c.state.Put(ctx, key, state); err != nil {
		c.heal(ctx, err)
		return fmt.Errorf("save checkpoint %s: %w", key, err)
	}
	return nil
}

// LeaseBucket holds the mailbox leases of cooperating instances (DESIGN.md §5).
const LeaseBucket = "mailpoller-leases"

// Leases returns the lease bucket, creating it with the given TTL if
// missing. Entries vanish TTL after their last write, so a dead holder's
// leases free themselves.
func (c *Conn) Leases(ctx context.Context, ttl time.Duration) (jetstream.KeyValue, error) {
	c.healMu.Lock()
	defer c.healMu.Unlock()
	var kv jetstream.KeyValue
	err := c.withReplicas(func(r int) (err error) {
		kv, err = c.js.CreateOrUpdateKeyValue(ctx, leaseConfig(r, ttl))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create KV bucket %s: %w", LeaseBucket, err)
	}
	c.leaseTTL = ttl // from now on, a server that lost the bucket gets it back
	return kv, nil
}

func leaseConfig(replicas int, ttl time.Duration) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      LeaseBucket,
		Description: "mailpoller mailbox leases",
		History:     1,
		TTL:         ttl,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	}
}
