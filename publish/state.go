package publish

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// StateKey is the KV key of one (account, mailbox, folder) checkpoint.
// KV keys allow [-/_=.a-zA-Z0-9]; other bytes are hex-escaped as "=XX".
func StateKey(account, mailbox, folder string) string {
	return escapeKey(account) + "." + escapeKey(strings.ToLower(mailbox)) + "." + escapeKey(folder)
}

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
		return nil, fmt.Errorf("load checkpoint %s: %w", key, err)
	}
	return e.Value(), nil
}

// SaveState stores the checkpoint under key.
func (c *Conn) SaveState(ctx context.Context, key string, state []byte) error {
	if _, err := c.state.Put(ctx, key, state); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", key, err)
	}
	return nil
}
