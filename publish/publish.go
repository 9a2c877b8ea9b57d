package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailpoller/mailpoller/message"
)

// InlineLimit is the largest attachment carried inside the event as base64;
// larger ones go to the object store.
const InlineLimit = 64 << 10

// headroom is kept free below the server's max payload for headers and
// JSON escaping slack.
const headroom = 8 << 10

// ErrTooLarge means the event would not fit the server's max payload even
// with every body and attachment moved to the object store.
var ErrTooLarge = errors.New("event does not fit the NATS max payload")

// Publish stores the raw message and large parts in the object store, fills
// the event's blob references, publishes it on subject with Nats-Msg-Id =
// ev.ID and waits for the PubAck. A nil error means JetStream has the event
// (ack.Duplicate is true when it had it already).
func (c *Conn) Publish(ctx context.Context, subject string, ev *Event, raw []byte) (*jetstream.PubAck, error) {
	msg, err := c.Prepare(ctx, subject, ev, raw)
	if err != nil {
		return nil, err
	}
	return c.PublishMsg(ctx, msg)
}

// Prepare does Publish's first half: it stores the raw message and large
// parts in the object store and returns the event's NATS message, with
// Nats-Msg-Id set, sized to fit the server's max payload. An attachment's
// SHA256 must be that of its Content, as message.Parse sets it: it is the
// blob's key and digest. A nil raw stores no raw blob: ev.Data.Raw stays
// nil and the event has no raw field.
func (c *Conn) Prepare(ctx context.Context, subject string, ev *Event, raw []byte) (*nats.Msg, error) {
	var puts []blobPut
	if raw != nil {
		puts = append(puts, rawPut(raw))
	}
	var large []*message.Attachment
	for i := range ev.Data.Attachments {
		a := &ev.Data.Attachments[i]
		if a.Content == nil {
			continue
		}
		if len(a.Content) <= InlineLimit {
			a.Data, a.Content = a.Content, nil
			continue
		}
		puts = append(puts, attachmentPut(a, a.Content)) // the parser hashed it already
		large = append(large, a)
	}
	refs, err := c.putBlobs(ctx, puts)
	if err != nil {
		return nil, fmt.Errorf("store raw message and attachments: %w", err)
	}
	if raw != nil {
		ev.Data.Raw, refs = refs[0], refs[1:]
	}
	for i, a := range large {
		a.Blob, a.Content = refs[i], nil
	}
	payload, err := c.fit(ctx, ev)
	if err != nil {
		return nil, err
	}
	msg := nats.NewMsg(subject)
	msg.Data = payload
	msg.Header.Set(jetstream.MsgIDHeader, ev.ID)
	msg.Header.Set("Content-Type", "application/cloudevents+json")
	return msg, nil
}

// PutRaw stores raw as the original message (.eml) in the object store,
// as Prepare does, and returns its reference: for a dead letter that
// must carry a message whose event stored none.
func (c *Conn) PutRaw(ctx context.Context, raw []byte) (*message.Blob, error) {
	refs, err := c.putBlobs(ctx, []blobPut{rawPut(raw)})
	if err != nil {
		return nil, fmt.Errorf("store raw message: %w", err)
	}
	return refs[0], nil
}

// PublishAsync sends a prepared message without waiting; the future
// resolves with the PubAck. Sends keep their order.
func (c *Conn) PublishAsync(msg *nats.Msg) (jetstream.PubAckFuture, error) {
	return c.js.PublishMsgAsync(msg)
}

// PublishMsg sends a prepared message and waits for its PubAck. When the
// stream (or a bucket) has gone missing, it fails and recreates it, so the
// caller's retry lands.
func (c *Conn) PublishMsg(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	subject := msg.Subject
	ack, err := c.js.PublishMsg(ctx, msg)
	if err != nil {
		// The stream may be gone (deleted by an operator, or a new
		// cluster): make it again, then let the caller retry.
		c.heal(ctx, err)
		return nil, fmt.Errorf("publish %s: %w", subject, err)
	}
	return ack, nil
}

// fit marshals ev, moving inline content to the object store until the
// payload fits the server's limit.
func (c *Conn) fit(ctx context.Context, ev *Event) ([]byte, error) {
	limit := c.MaxPayload() - headroom
	steps := []func() error{
		func() error { // 1: inline attachments
			for i := range ev.Data.Attachments {
				a := &ev.Data.Attachments[i]
				if a.Data == nil {
					continue
				}
				refs, err := c.putBlobs(ctx, []blobPut{attachmentPut(a, a.Data)})
				if err != nil {
					return err
				}
				a.Blob, a.Data = refs[0], nil
			}
			return nil
		},
		func() error { // 2: bodies
			if ev.Data.Text != "" {
				b, err := c.PutFile(ctx, []byte(ev.Data.Text), textFilename, textType)
				if err != nil {
					return err
				}
				ev.Data.TextBlob, ev.Data.Text = b, ""
			}
			if ev.Data.HTML != "" {
				b, err := c.PutFile(ctx, []byte(ev.Data.HTML), htmlFilename, htmlType)
				if err != nil {
					return err
				}
				ev.Data.HTMLBlob, ev.Data.HTML = b, ""
			}
			return nil
		},
		func() error { // 3: the header list (the raw blob keeps it)
			ev.Data.Headers = nil
			ev.Data.Problems = append(ev.Data.Problems, message.Problem{
				Code: "headers_dropped", Detail: "header list too large for the NATS max payload; read them from the raw blob"})
			return nil
		},
	}
	for i := 0; ; i++ {
		payload, err := json.Marshal(ev)
		if err != nil {
			return nil, fmt.Errorf("encode event: %w", err)
		}
		if int64(len(payload)) <= limit {
			return payload, nil
		}
		if i == len(steps) {
			return nil, fmt.Errorf("%w (%d bytes, limit %d)", ErrTooLarge, len(payload), limit)
		}
		if err := steps[i](); err != nil {
			return nil, fmt.Errorf("store content apart: %w", err)
		}
	}
}

// DeadLetter is the payload of a dead-letter event: a message that could not
// be turned into an event.
type DeadLetter struct {
	ID       string        `json:"id"`
	Account  string        `json:"account"`
	Mailbox  string        `json:"mailbox"`
	Folder   string        `json:"folder"`
	Protocol string        `json:"protocol"`
	ServerID string        `json:"server_id"`
	Reason   string        `json:"reason"`
	Attempts int           `json:"attempts"`
	Raw      *message.Blob `json:"raw,omitempty"`
}

// PublishDeadLetter publishes dl on subject, deduplicated by its id.
func (c *Conn) PublishDeadLetter(ctx context.Context, subject string, dl *DeadLetter) error {
	payload, err := json.Marshal(dl)
	if err != nil {
		return fmt.Errorf("encode dead letter: %w", err)
	}
	msg := nats.NewMsg(subject)
	msg.Data = payload
	if _, err := c.js.PublishMsg(ctx, msg, jetstream.WithMsgID("dl-"+dl.ID)); err != nil {
		c.heal(ctx, err)
		return fmt.Errorf("publish dead letter %s: %w", subject, err)
	}
	return nil
}
