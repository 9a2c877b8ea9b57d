// Package message turns raw RFC 5322 / MIME bytes into the data of a
// mailpoller event: decoded addresses and headers, UTF-8 text and HTML
// bodies, attachments with their sha256, threading headers and the
// auto-reply / bounce / bulk flags that consumers use to avoid mail loops.
//
// Parse never fails: broken or hostile input still yields a Message with
// what could be read and a Problem for each thing that could not. The
// Problem codes are the Problem* constants; each is documented there.
//
// # Bodies and attachments
//
// text/plain and text/html parts without a filename and without
// Content-Disposition: attachment are bodies, converted to UTF-8 from
// their charset (several plain parts are joined with "\n", as are HTML
// parts split around an inline image). Every other leaf part is an
// Attachment, with its transfer encoding undone but its bytes otherwise
// as sent. An attached message/rfc822 is not parsed further: it is named
// after its Subject (or "message.eml"). A part is inline when its
// Content-Disposition says so, or when it has a Content-ID inside
// multipart/related.
//
// # Auto flags
//
//   - AutoReply: Auto-Submitted present and not "no"; or X-Autoreply,
//     X-Autorespond or X-Auto-Response-Suppress present with any value;
//     or Precedence: auto_reply.
//   - Bounce: top-level Content-Type multipart/report with
//     report-type=delivery-status; or any message/delivery-status part; or
//     a null Return-Path (<>) with a From containing MAILER-DAEMON or
//     postmaster (any case).
//   - Bulk: Precedence bulk, list or junk; or List-Id or List-Unsubscribe
//     present.
//
// # Leniency
//
// Raw 8-bit header bytes are read as windows-1252; encoded words are
// decoded word by word (a broken one is kept as written); Date accepts
// RFC 5322 with its obsolete forms and common broken ones (zone
// abbreviations, "+01:00", no zone at all, which reads as UTC); address
// lists that net/mail refuses are read piece by piece; base64 skips
// characters outside its alphabet (RFC 2045 §6.8) and needs no padding.
// Where the sender's meaning is recovered in full (a missing padding, a
// zone abbreviation, an encoded word inside quotes) nothing is recorded;
// where something is guessed or dropped (raw 8-bit header bytes, skipped
// base64 characters, a word kept as written, an address list read piece
// by piece) a Problem says so. A Date without a zone is read as UTC
// silently.
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
