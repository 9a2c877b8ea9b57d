package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Event is the part of a mailpoller event (a CloudEvents 1.0 envelope,
// configs/event.schema.json) this example uses. Unknown fields are
// ignored, so new fields in the contract do not break it.
type Event struct {
	ID      string    `json:"id"` // the dedup key, also the Nats-Msg-Id header
	Source  string    `json:"source"`
	Type    string    `json:"type"`
	Subject string    `json:"subject"` // the Message-ID
	Time    time.Time `json:"time"`
	Data    struct {
		Account     string       `json:"account"`
		Mailbox     string       `json:"mailbox"`
		Folder      string       `json:"folder"`
		Subject     string       `json:"subject"`
		From        []Address    `json:"from"`
		Attachments []Attachment `json:"attachments"`
		Auto        struct {
			AutoReply bool `json:"auto_reply"`
			Bounce    bool `json:"bounce"`
			Bulk      bool `json:"bulk"`
		} `json:"auto"`
		Raw *Blob `json:"raw"`
	} `json:"data"`
}

// Address is a decoded mail address.
type Address struct {
	Name    string `json:"name"`
	Address string `json:"address"`
}

// Attachment is one attachment: its content is either inline (Data, base64
// in JSON) or in the object store (Blob).
type Attachment struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	Data        []byte `json:"data"`
	Blob        *Blob  `json:"blob"`
}

// Blob is a reference to an object-store entry; Key is the lower-case hex
// sha256 of the content.
type Blob struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	Size   int64  `json:"size"`
}

// Options configure Run.
type Options struct {
	Stream         string   // the events stream, MAIL by default
	Durable        string   // the durable consumer's name
	FilterSubjects []string // empty: every event subject
	Bucket         string   // object store of blobs, mailpoller-blobs by default
	// Seen remembers handled event ids. JetStream drops a republished
	// event inside its duplicate window; a replay after it (a resync, a
	// restored checkpoint) arrives again with the same id, so a consumer
	// deduplicates by id. Nil: no deduplication.
	Seen Deduper
	// Limit stops Run after this many messages (duplicates included);
	// 0 runs until ctx ends.
	Limit int
}

// Deduper remembers event ids. A real consumer keeps them where it keeps
// its results (a unique key in its database, written in the same
// transaction), so a crash between the two cannot lose or double an event.
type Deduper interface {
	// Seen reports whether id was marked before.
	Seen(id string) bool
	// Mark records id as handled.
	Mark(id string)
}

// Run consumes events with a durable pull consumer until ctx ends or
// opts.Limit messages were received, writing a line per event and per
// blob to out. Each event is acked only after its blobs were fetched and
// checked; an event that fails is left unacked (Nak) for redelivery.
func Run(ctx context.Context, js jetstream.JetStream, opts Options, out io.Writer) error {
	if opts.Stream == "" {
		opts.Stream = "MAIL"
	}
	if opts.Bucket == "" {
		opts.Bucket = "mailpoller-blobs"
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, opts.Stream, jetstream.ConsumerConfig{
		Durable:        opts.Durable,
		FilterSubjects: opts.FilterSubjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        time.Minute,
		MaxDeliver:     10,
	})
	if err != nil {
		return fmt.Errorf("create consumer %s on stream %s: %w", opts.Durable, opts.Stream, err)
	}
	store, err := js.ObjectStore(ctx, opts.Bucket)
	if err != nil {
		return fmt.Errorf("open object store %s: %w", opts.Bucket, err)
	}
	for n := 0; opts.Limit == 0 || n < opts.Limit; {
		want := 10
		if opts.Limit != 0 {
			want = min(want, opts.Limit-n)
		}
		batch, err := cons.Fetch(want, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return fmt.Errorf("fetch events: %w", err)
		}
		for msg := range batch.Messages() {
			n++
			if err := handle(ctx, store, msg, opts.Seen, out); err != nil {
				fmt.Fprintf(out, "error subject=%s: %v\n", msg.Subject(), err)
				_ = msg.NakWithDelay(10 * time.Second)
				continue
			}
			if err := msg.DoubleAck(ctx); err != nil { // waits for the server: an ack lost on the way redelivers
				return fmt.Errorf("ack event: %w", err)
			}
		}
		if err := batch.Error(); err != nil && ctx.Err() == nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("fetch events: %w", err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// handle prints one event and fetches and checks its blobs.
func handle(ctx context.Context, store jetstream.ObjectStore, msg jetstream.Msg, seen Deduper, out io.Writer) error {
	var ev Event
	if err := json.Unmarshal(msg.Data(), &ev); err != nil {
		return fmt.Errorf("decode event: %w", err)
	}
	if seen != nil && seen.Seen(ev.ID) {
		fmt.Fprintf(out, "duplicate id=%s skipped\n", ev.ID)
		return nil
	}
	from := ""
	if len(ev.Data.From) > 0 {
		from = ev.Data.From[0].Address
	}
	fmt.Fprintf(out, "event id=%s account=%s mailbox=%s from=%s subject=%q attachments=%d auto_reply=%t bounce=%t\n",
		ev.ID, ev.Data.Account, ev.Data.Mailbox, from, ev.Data.Subject, len(ev.Data.Attachments),
		ev.Data.Auto.AutoReply, ev.Data.Auto.Bounce)
	for _, a := range ev.Data.Attachments {
		data := a.Data
		where := "inline"
		if a.Blob != nil {
			b, err := fetch(ctx, store, a.Blob)
			if err != nil {
				return fmt.Errorf("attachment %s: %w", a.Filename, err)
			}
			data, where = b, "blob key="+a.Blob.Key
		}
		if sum := sha256hex(data); sum != a.SHA256 {
			return fmt.Errorf("attachment %s: sha256 %s, event says %s", a.Filename, sum, a.SHA256)
		}
		fmt.Fprintf(out, "attachment %q %s bytes=%d sha256=%s ok\n", a.Filename, where, len(data), a.SHA256)
	}
	if ev.Data.Raw != nil {
		raw, err := fetch(ctx, store, ev.Data.Raw)
		if err != nil {
			return fmt.Errorf("raw message: %w", err)
		}
		fmt.Fprintf(out, "raw key=%s bytes=%d sha256 ok\n", ev.Data.Raw.Key, len(raw))
	}
	if seen != nil {
		seen.Mark(ev.ID)
	}
	return nil
}

// fetch reads a blob and checks it against its key, the sha256 of its
// content.
func fetch(ctx context.Context, store jetstream.ObjectStore, b *Blob) ([]byte, error) {
	data, err := store.GetBytes(ctx, b.Key)
	if err != nil {
		return nil, fmt.Errorf("get blob %s: %w", b.Key, err)
	}
	if sum := sha256hex(data); sum != b.Key {
		return nil, fmt.Errorf("blob %s has sha256 %s", b.Key, sum)
	}
	return data, nil
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Seen is an in-memory Deduper holding the most recent ids, up to a bound.
type Seen struct {
	mu    sync.Mutex
	max   int
	ids   map[string]bool
	order []string
}

// NewSeen returns a Seen that remembers up to max ids.
func NewSeen(max int) *Seen {
	return &Seen{max: max, ids: map[string]bool{}}
}

// Seen reports whether id was marked and is still remembered.
func (s *Seen) Seen(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id]
}

// Mark remembers id, forgetting the oldest one when full.
func (s *Seen) Mark(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids[id] {
		return
	}
	if len(s.order) >= s.max {
		delete(s.ids, s.order[0])
		s.order = s.order[1:]
	}
	s.ids[id] = true
	s.order = append(s.order, id)
}
