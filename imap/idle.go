package imap

import (
	"context"
	"fmt"
	"time"

	goimap "github.com/emersion/go-imap/v2"
)

func (s *Source) signal() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// maxIdle is how long one IDLE may last: Exchange Online drops idle
// connections after about 30 minutes (RFC 2177 says re-issue before 29).
const maxIdle = 20 * time.Minute

// Wait implements source.Waiter with IMAP IDLE: it returns when the server
// reports new messages (EXISTS), after max, or when the token is due for
// renewal (then the next Poll asks for a new connection). Servers without
// IDLE just wait max. While idling the server may stay silent for max:
// the read deadline is max plus ReadTimeout, and a server that does not
// answer DONE within ReadTimeout fails the connection.
func (s *Source) Wait(ctx context.Context, max time.Duration) error {
	max = min(max, maxIdle)
	if !s.renewAt.IsZero() {
		max = min(max, time.Until(s.renewAt))
	}
	if max <= 0 {
		return nil
	}
	select { // a change seen during the last poll
	case <-s.changed:
		return nil
	default:
	}
	if !s.caps().Has(goimap.CapIdle) {
		sleepCtx(ctx, max)
		return nil
	}
	defer s.guard(ctx)()
	endStart := s.conn.begin("idle", s.opts.ReadTimeout, s.opts.CommandTimeout)
	endIdle := s.conn.begin("idling", max+s.opts.ReadTimeout, max+s.opts.ReadTimeout)
	idle, err := s.c.Idle()
	endStart()
	if err != nil {
		endIdle()
		return fmt.Errorf("idle: %w", s.failure(err))
	}
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-s.changed:
	case <-t.C:
	case <-ctx.Done():
	case <-s.c.Closed():
	}
	endDone := s.conn.begin("idle done", s.opts.ReadTimeout, s.opts.CommandTimeout)
	defer endDone()
	endIdle()
	if err := idle.Close(); err != nil {
		return fmt.Errorf("idle done: %w", s.failure(err))
	}
	if err := idle.Wait(); err != nil {
		return fmt.Errorf("idle: %w", s.failure(err))
	}
	return nil
}

// failure is the connection's failure if it had one, else err classified.
func (s *Source) failure(err error) error {
	if fault := s.conn.failure(); fault != nil {
		return fault
	}
	return classify(err)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
