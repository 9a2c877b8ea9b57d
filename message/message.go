// Package message turns raw RFC 5322 / MIME bytes into the data of a
// mailpoller event: decoded addresses and headers, UTF-8 text and HTML
// bodies, attachments with their sha256, threading headers and the
// auto-reply / bounce / bulk flags that consumers use to avoid mail loops.
//
// Parse never fails: broken or hostile input still yields a Message with
// what could be read and a Problem for each thing that could not.
package message

import "time"

// Message is the parsed form of one mail. Its JSON form is the "data"
// part of the event contract (DESIGN.md §4) minus the fields the poller
// adds (account, mailbox, folder, protocol, server id, raw).
type Message struct {
	MessageID   string       `json:"message_id"`
	InReplyTo   []string     `json:"in_reply_to"`
	References  []string     `json:"references"`
	Subject     string       `json:"subject"`
	Date        *time.Time   `json:"date"`
	From        []Address    `json:"from"`
	Sender      *Address     `json:"sender"`
	ReplyTo     []Address    `json:"reply_to"`
	To          []Address    `json:"to"`
	Cc          []Address    `json:"cc"`
	Headers     []Header     `json:"headers"`
	Text        string       `json:"text"`
	HTML        string       `json:"html"`
	Attachments []Attachment `json:"attachments"`
	Auto        Auto         `json:"auto"`
	Size        int64        `json:"size"`
	Problems    []Problem    `json:"problems"`
}

// Address is a decoded mailbox address.
type Address struct {
	Name    string `json:"name"`
	Address string `json:"address"`
}

// Header is one header field: its name as the sender wrote it (not
// canonicalised: Message-ID stays Message-ID) and its value decoded to UTF-8
// (RFC 2047 encoded words resolved, folding replaced by one space). Order
// and repeats are kept.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Attachment is a non-body MIME part (or an inline part such as an image
// referenced by Content-ID).
type Attachment struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"` // lower-case hex of the decoded content
	ContentID   string `json:"content_id,omitempty"`
	Inline      bool   `json:"inline"`

	// Data is the decoded content when the publisher inlines it (base64 in JSON).
	Data []byte `json:"data,omitempty"`
	// Blob names the object-store entry when the content is stored apart.
	Blob *Blob `json:"blob,omitempty"`

	// Content is the decoded content as parsed; the publisher moves it to
	// Data or to a blob. Never serialised.
	Content []byte `json:"-"`
}

// Blob is a reference to content kept in the JetStream Object Store.
type Blob struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"` // sha256 hex of the content
	Size   int64  `json:"size"`
}

// Auto holds the flags that mark machine-generated mail.
type Auto struct {
	AutoReply bool `json:"auto_reply"`
	Bounce    bool `json:"bounce"`
	Bulk      bool `json:"bulk"`
}

// Problem records something that could not be parsed cleanly.
type Problem struct {
	Code   string `json:"code"`             // stable, e.g. "bad_charset", "too_large", "truncated_mime"
	Part   string `json:"part,omitempty"`   // MIME part path such as "1.2", if any
	Detail string `json:"detail,omitempty"` // human-readable detail
}

// Options bound the work Parse does on hostile input. Zero values mean the
// documented defaults.
type Options struct {
	MaxHeaderBytes int // per message header block; default 1 MiB
	MaxDepth       int // MIME nesting; default 32
	MaxParts       int // total MIME parts; default 1000
}
