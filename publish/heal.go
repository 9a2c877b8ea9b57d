package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// healEvery is the least time between two heals: while JetStream is away
// every publish fails, and one look per second is plenty.
const healEvery = time.Second

// Missing reports whether err says that a stream or bucket is not there:
// nothing answered a publish, or the API said it does not exist. Either
// the server lost it (a new cluster, a wiped store, an operator) or
// JetStream is not running at the moment.
func Missing(err error) bool {
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrBucketNotFound)
}

// heal is called with the error of a failed JetStream operation. When err
// says a stream or bucket is missing, it recreates whichever of the events
// stream, the checkpoint bucket, the blob store and (once Leases made it)
// the lease bucket the server does not have, so a server that comes back
// without them (or with JetStream restarted) needs no restart of
// mailpoller. The handles Conn holds name their streams and stay valid.
// It never blocks on another heal, runs at most once per healEvery, and
// does nothing while the embedded server's JetStream is being restarted.
// The failed operation is not retried: its caller retries.
func (c *Conn) heal(ctx context.Context, err error) {
	if !Missing(err) || c.restarting.Load() || !c.healMu.TryLock() {
		return
	}
	defer c.healMu.Unlock()
	if time.Since(c.lastHeal) < healEvery {
		return
	}
	c.lastHeal = time.Now()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := c.ensureStream(ctx); err != nil {
		// Warned once while it lasts: JetStream may be away for long.
		level := slog.LevelWarn
		if c.healFailing {
			level = slog.LevelDebug
		}
		c.healFailing = true
		c.log.Log(ctx, level, "stream missing and could not be recreated", "stream", c.stream, "err", err)
		return // JetStream is not answering: the buckets would fail alike
	}
	c.healFailing = false
	kvs := []jetstream.KeyValueConfig{stateConfig(c.replicas)}
	if c.leaseTTL > 0 {
		kvs = append(kvs, leaseConfig(c.replicas, c.leaseTTL))
	}
	for _, cfg := range kvs {
		_, err := c.js.KeyValue(ctx, cfg.Bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			err = c.withReplicas(func(r int) error {
				cfg.Replicas = r
				_, err := c.js.CreateKeyValue(ctx, cfg)
				return err
			})
			if err == nil {
				c.log.Warn("KV bucket was missing and has been recreated", "bucket", cfg.Bucket)
			}
		}
		if err != nil {
			c.log.Warn("KV bucket missing and could not be recreated", "bucket", cfg.Bucket, "err", err)
		}
	}
	_, err = c.js.ObjectStore(ctx, BlobBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		err = c.withReplicas(func(r int) error {
			_, err := c.js.CreateObjectStore(ctx, blobConfig(r, c.keep))
			return err
		})
		if err == nil {
			c.log.Warn("object store was missing and has been recreated", "bucket", BlobBucket)
		}
	}
	if err != nil {
		c.log.Warn("object store missing and could not be recreated", "bucket", BlobBucket, "err", fmt.Errorf("look up: %w", err))
	}
}
