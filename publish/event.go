package publish

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/message"
)

// EventType is the CloudEvents type of every mail event.
const EventType = "mail.received"

// Event is the CloudEvents 1.0 envelope (structured JSON mode) of one mail.
// configs/event.schema.json is its schema.
type Event struct {
	SpecVersion string `json:"specversion"`
	ID          string `json:"id"`
	Source      string `json:"source"`
	Type        string `json:"type"`
	// Subject is the Internet Message-ID without angle brackets, exactly
	// as data.message_id; absent when the message has none.
	Subject         string    `json:"subject,omitempty"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	Data            Data      `json:"data"`
}

// Data is the event's payload: where the mail came from, and the parsed mail.
type Data struct {
	Account  string `json:"account"`
	Mailbox  string `json:"mailbox"`
	Folder   string `json:"folder"`
	Protocol string `json:"protocol"`
	ServerID string `json:"server_id"`
	message.Message
	// TextBlob and HTMLBody hold the bodies when they were too large to
	// inline; Text or HTML is then empty.
	TextBlob *message.Blob `json:"text_blob,omitempty"`
	HTMLBlob *message.Blob `json:"html_blob,omitempty"`
	// Raw is the original message (.eml) in the object store; nil (and
	// absent from the JSON) when no blob was stored (store_raw).
	Raw *message.Blob `json:"raw,omitempty"`
}

// MarshalJSON writes d with every list as [] when it is empty, never null,
// so consumers can iterate without a null check.
func (d Data) MarshalJSON() ([]byte, error) {
	type plain Data // without this method
	p := plain(d)
	p.InReplyTo = orEmpty(p.InReplyTo)
	p.References = orEmpty(p.References)
	p.From = orEmpty(p.From)
	p.ReplyTo = orEmpty(p.ReplyTo)
	p.To = orEmpty(p.To)
	p.Cc = orEmpty(p.Cc)
	p.Headers = orEmpty(p.Headers)
	p.Attachments = orEmpty(p.Attachments)
	p.Problems = orEmpty(p.Problems)
	return json.Marshal(p)
}

// orEmpty is s, or an empty slice when s is nil.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Origin names where a message was read.
type Origin struct {
	Account  string
	Mailbox  string
	Folder   string
	Protocol string
	ServerID string
}

// EventID is the dedup key of a message: a hash of account, mailbox, folder
// and the server's stable id, so every replay of the same message carries
// the same id.
func EventID(o Origin) string {
	h := sha256.New()
	for _, s := range []string{o.Account, strings.ToLower(o.Mailbox), strings.ToLower(o.Folder), o.ServerID} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Subject is the NATS subject of a mailbox's events.
func Subject(prefix, account, mailbox string) string {
	return prefix + "." + account + "." + config.Token(mailbox)
}

// DeadLetterSubject is where messages that cannot be turned into events go.
func DeadLetterSubject(prefix, account, mailbox string) string {
	return prefix + ".deadletter." + account + "." + config.Token(mailbox)
}

// NewEvent builds the event of a parsed message. received is when the
// server got the message (zero: the Date header, else now).
func NewEvent(o Origin, m *message.Message, received time.Time) *Event {
	t := received
	if t.IsZero() && m.Date != nil {
		t = *m.Date
	}
	if t.IsZero() {
		t = time.Now()
	}
	return &Event{
		SpecVersion:     "1.0",
		ID:              EventID(o),
		Source:          "mailpoller/" + o.Account + "/" + o.Mailbox + "/" + o.Folder,
		Type:            EventType,
		Subject:         m.MessageID, // the same form as data.message_id: no angle brackets
		Time:            t.UTC(),
		DataContentType: "application/json",
		Data: Data{
			Account:  o.Account,
			Mailbox:  o.Mailbox,
			Folder:   o.Folder,
			Protocol: o.Protocol,
			ServerID: o.ServerID,
			Message:  *m,
		},
	}
}
