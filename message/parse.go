package message

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	gomessage "github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // windows-125x, ISO-8859-x, ISO-2022-JP, GB18030, Shift_JIS, KOI8-R, ...
	gomail "github.com/emersion/go-message/mail"
	"golang.org/x/text/encoding/charmap"
)

// Problem codes. Each names one thing Parse could not read cleanly; the
// message still yields everything else.
const (
	ProblemBadCharset     = "bad_charset"      // unknown charset, or bytes invalid in it (text replaced by U+FFFD)
	ProblemBadEncoding    = "bad_encoding"     // unknown or broken Content-Transfer-Encoding (what decoded is kept)
	ProblemBadHeader      = "bad_header"       // a header that could not be decoded (raw value kept)
	ProblemBadDate        = "bad_date"         // unparsable Date header (date is null)
	ProblemBadAddress     = "bad_address"      // unparsable address list (the readable addresses are kept)
	ProblemTruncatedMIME  = "truncated_mime"   // a multipart ends without its closing boundary, or a part is cut off
	ProblemTooDeep        = "too_deep"         // MIME nesting deeper than Options.MaxDepth: deeper parts skipped
	ProblemTooManyParts   = "too_many_parts"   // more MIME parts than Options.MaxParts: the rest skipped
	ProblemHeaderTooLarge = "header_too_large" // header block over Options.MaxHeaderBytes: the rest of it skipped
	ProblemNoBody         = "no_body"          // the message has a header but no body
	ProblemNotMIME        = "not_mime"         // no RFC 5322 header at all: the whole input is the text body
	ProblemTooLarge       = "too_large"        // set by the poller: over max_message_bytes, only the header was read
)

// Defaults of Options.
const (
	DefaultMaxHeaderBytes = 1 << 20
	DefaultMaxDepth       = 32
	DefaultMaxParts       = 1000
)

type parser struct {
	opts   Options
	m      *Message
	parts  int
	budget int64 // decoded bytes left
	seen   map[string]bool
}

// Parse reads raw as an RFC 5322 message. It never fails and never panics:
// whatever could not be read is listed in Message.Problems. The work is
// bounded by opts (nil: defaults) and by about twice len(raw) of decoded
// content.
//
// Auto flags: AutoReply when Auto-Submitted is present and not "no", when
// X-Autoreply or X-Autorespond is present, when X-Auto-Response-Suppress
// is present (Exchange's out-of-office replies set it), or when Precedence
// is auto_reply. Bounce when the top-level type is multipart/report with
// report-type=delivery-status, or a message/delivery-status part exists,
// or Return-Path is <> and From is a MAILER-DAEMON or postmaster. Bulk when
// Precedence is bulk, list or junk, or List-Id or List-Unsubscribe is present.
func Parse(raw []byte, opts *Options) (m *Message) {
	p := &parser{m: &Message{Size: int64(len(raw))}, seen: map[string]bool{}}
	if opts != nil {
		p.opts = *opts
	}
	if p.opts.MaxHeaderBytes <= 0 {
		p.opts.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if p.opts.MaxDepth <= 0 {
		p.opts.MaxDepth = DefaultMaxDepth
	}
	if p.opts.MaxParts <= 0 {
		p.opts.MaxParts = DefaultMaxParts
	}
	p.budget = 2*int64(len(raw)) + 1<<20
	defer func() {
		if r := recover(); r != nil {
			p.problem("", ProblemBadEncoding, fmt.Sprintf("parser stopped: %v", r))
			m = p.m
		}
	}()
	p.parse(raw)
	return p.m
}

func (p *parser) problem(part, code, detail string) {
	key := code + "\x00" + part + "\x00" + detail
	if p.seen[key] || len(p.m.Problems) >= 100 {
		return
	}
	p.seen[key] = true
	p.m.Problems = append(p.m.Problems, Problem{Code: code, Part: part, Detail: detail})
}

// headerEnd returns the length of the header block including the blank line.
func headerEnd(raw []byte) (int, bool) {
	if bytes.HasPrefix(raw, []byte("\r\n")) {
		return 2, true
	}
	if bytes.HasPrefix(raw, []byte("\n")) {
		return 1, true
	}
	i := bytes.Index(raw, []byte("\n\r\n"))
	j := bytes.Index(raw, []byte("\n\n"))
	switch {
	case i >= 0 && (j < 0 || i < j):
		return i + 3, true
	case j >= 0:
		return j + 2, true
	}
	return len(raw), false
}

func looksLikeHeader(raw []byte) bool {
	line, _, _ := bytes.Cut(raw, []byte("\n"))
	name, _, ok := bytes.Cut(line, []byte(":"))
	return ok && len(name) > 0 && !bytes.ContainsAny(name, " \t") || bytes.HasPrefix(raw, []byte("From "))
}

func (p *parser) parse(raw []byte) {
	if len(raw) == 0 || !looksLikeHeader(raw) {
		p.problem("", ProblemNotMIME, "no RFC 5322 header")
		p.m.Text = strings.ReplaceAll(p.utf8("", string(raw)), "\r\n", "\n")
		return
	}
	if bytes.HasPrefix(raw, []byte("From ")) { // mbox separator line
		_, rest, _ := bytes.Cut(raw, []byte("\n"))
		raw = rest
	}
	hlen, hasBody := headerEnd(raw)
	if hlen > p.opts.MaxHeaderBytes {
		p.problem("", ProblemHeaderTooLarge, fmt.Sprintf("header is %d bytes, limit %d", hlen, p.opts.MaxHeaderBytes))
		cut := bytes.LastIndexByte(raw[:p.opts.MaxHeaderBytes], '\n')
		body := raw[hlen:]
		raw = append(append(append([]byte{}, raw[:cut+1]...), "\r\n"...), body...)
		hlen = cut + 3
	}
	if !hasBody || hlen >= len(raw) {
		p.problem("", ProblemNoBody, "")
	}
	e, err := gomessage.ReadWithOptions(bytes.NewReader(raw), &gomessage.ReadOptions{MaxHeaderBytes: int64(hlen) + 16})
	if e == nil {
		p.problem("", ProblemBadHeader, errText(err))
		p.m.Text = p.utf8("", string(raw))
		return
	}
	p.header(e.Header)
	p.walk(e, err, "", 0, "")
	p.m.Text = strings.TrimRight(p.m.Text, "\r\n")
	if p.m.Text != "" {
		p.m.Text += "\n"
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// utf8 makes s valid UTF-8, recording a problem if it was not.
func (p *parser) utf8(part, s string) string {
	if utf8.ValidString(s) {
		return s
	}
	p.problem(part, ProblemBadCharset, "invalid bytes replaced")
	return strings.ToValidUTF8(s, "\uFFFD")
}

var wordDecoder = &mime.WordDecoder{CharsetReader: func(charset string, input io.Reader) (io.Reader, error) {
	return gomessage.CharsetReader(charset, input)
}}

// latin1 turns raw 8-bit header bytes (not allowed, but common) into UTF-8,
// reading them as windows-1252, and records the problem.
func (p *parser) latin1(name, v string) string {
	if utf8.ValidString(v) {
		return v
	}
	p.problem("", ProblemBadCharset, name+": raw 8-bit bytes read as windows-1252")
	if s, err := charmap.Windows1252.NewDecoder().String(v); err == nil {
		return s
	}
	return strings.ToValidUTF8(v, "\uFFFD")
}

// decodeHeader decodes RFC 2047 words; undecodable values are kept raw.
func (p *parser) decodeHeader(name, v string) string {
	v = p.latin1(name, v)
	d, err := wordDecoder.DecodeHeader(v)
	if err != nil {
		p.problem("", ProblemBadHeader, name+": "+err.Error())
		d = v
	}
	return p.utf8("", d)
}

func (p *parser) header(h gomessage.Header) {
	mh := gomail.Header{Header: h}
	fields := h.Fields()
	for fields.Next() {
		name := fields.Key()
		p.m.Headers = append(p.m.Headers, Header{Name: name, Value: p.decodeHeader(name, unfold(fields.Value()))})
	}
	p.m.Subject = p.decodeHeader("Subject", unfold(h.Get("Subject")))
	if id, err := mh.MessageID(); err == nil {
		p.m.MessageID = p.latin1("Message-Id", id)
	} else if v := strings.TrimSpace(h.Get("Message-Id")); v != "" {
		p.m.MessageID = p.latin1("Message-Id", strings.Trim(v, "<> "))
	}
	p.m.InReplyTo = p.msgIDs(mh, "In-Reply-To")
	p.m.References = p.msgIDs(mh, "References")
	if v := h.Get("Date"); v != "" {
		if t, ok := parseDate(v); ok {
			p.m.Date = &t
		} else {
			p.problem("", ProblemBadDate, v)
		}
	}
	p.m.From = p.addresses(h, "From")
	if s := p.addresses(h, "Sender"); len(s) > 0 {
		p.m.Sender = &s[0]
	}
	p.m.ReplyTo = p.addresses(h, "Reply-To")
	p.m.To = p.addresses(h, "To")
	p.m.Cc = p.addresses(h, "Cc")
	p.flags(h)
}

func unfold(v string) string {
	v = strings.ReplaceAll(v, "\r\n", "")
	return strings.TrimSpace(strings.ReplaceAll(v, "\n", ""))
}

func (p *parser) msgIDs(mh gomail.Header, key string) []string {
	v := mh.Get(key)
	if v == "" {
		return nil
	}
	var out []string
	if ids, err := mh.MsgIDList(key); err == nil {
		out = ids
	} else {
		for _, f := range strings.Fields(v) { // lenient: anything between < and >
			if id := strings.Trim(f, "<>,"); id != "" {
				out = append(out, id)
			}
		}
	}
	for i := range out {
		out[i] = p.latin1(key, out[i])
	}
	return out
}

var dateLayouts = []string{
	"Mon, 2 Jan 2006 15:04:05 -0700", "2 Jan 2006 15:04:05 -0700", "Mon, 2 Jan 2006 15:04:05 MST",
	"Mon, 2 Jan 2006 15:04 -0700", "Mon, 2 Jan 06 15:04:05 -0700", "Mon, 02 Jan 2006 15:04:05 -0700 (MST)",
	"Monday, January 2, 2006 3:04 PM", time.RFC3339, "2006-01-02 15:04:05 -0700", "Mon Jan 2 15:04:05 2006",
}

func parseDate(v string) (time.Time, bool) {
	v = strings.TrimSpace(v)
	if t, err := mail.ParseDate(v); err == nil {
		return t, true
	}
	if i := strings.Index(v, " ("); i > 0 { // trailing comment such as "(CEST)"
		if t, err := mail.ParseDate(v[:i]); err == nil {
			return t, true
		}
	}
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func (p *parser) addresses(h gomessage.Header, key string) []Address {
	v := h.Get(key)
	if strings.TrimSpace(v) == "" {
		return nil
	}
	if !utf8.ValidString(v) {
		h = gomessage.Header{}
		h.Set(key, p.latin1(key, v))
		v = h.Get(key)
	}
	mh := gomail.Header{Header: h}
	if list, err := mh.AddressList(key); err == nil {
		out := make([]Address, 0, len(list))
		for _, a := range list {
			out = append(out, Address{Name: p.utf8("", a.Name), Address: p.utf8("", a.Address)})
		}
		return out
	}
	// Lenient: parse each comma-separated piece on its own.
	var out []Address
	for _, piece := range strings.Split(unfold(v), ",") {
		piece = strings.TrimSpace(piece)
		if piece == "" {
			continue
		}
		if a, err := (&mail.AddressParser{WordDecoder: wordDecoder}).Parse(piece); err == nil {
			out = append(out, Address{Name: p.utf8("", a.Name), Address: p.utf8("", a.Address)})
		} else if at := strings.LastIndex(piece, "@"); at > 0 {
			addr := strings.Trim(piece[strings.LastIndexAny(piece[:at], " <\"")+1:], "<> \"")
			out = append(out, Address{Address: p.utf8("", addr)})
		}
	}
	p.problem("", ProblemBadAddress, key+": "+p.utf8("", unfold(v)))
	return out
}

func (p *parser) flags(h gomessage.Header) {
	has := func(k string) bool { return strings.TrimSpace(h.Get(k)) != "" }
	lower := func(k string) string { return strings.ToLower(strings.TrimSpace(h.Get(k))) }
	if as := lower("Auto-Submitted"); as != "" && as != "no" {
		p.m.Auto.AutoReply = true
	}
	if has("X-Autoreply") || has("X-Autorespond") || has("X-Auto-Response-Suppress") || lower("Precedence") == "auto_reply" {
		p.m.Auto.AutoReply = true
	}
	switch lower("Precedence") {
	case "bulk", "list", "junk":
		p.m.Auto.Bulk = true
	}
	if has("List-Id") || has("List-Unsubscribe") {
		p.m.Auto.Bulk = true
	}
	if t, params, err := h.ContentType(); err == nil && t == "multipart/report" && strings.EqualFold(params["report-type"], "delivery-status") {
		p.m.Auto.Bounce = true
	}
	if strings.TrimSpace(h.Get("Return-Path")) == "<>" {
		from := strings.ToLower(h.Get("From"))
		if strings.Contains(from, "mailer-daemon") || strings.Contains(from, "postmaster") {
			p.m.Auto.Bounce = true
		}
	}
}

func partPath(parent string, i int) string {
	if parent == "" {
		return strconv.Itoa(i)
	}
	return parent + "." + strconv.Itoa(i)
}

// walk visits an entity: multiparts recursively, leaves into bodies or
// attachments. parentType is the enclosing multipart's media type.
func (p *parser) walk(e *gomessage.Entity, readErr error, path string, depth int, parentType string) {
	p.parts++
	if p.parts > p.opts.MaxParts {
		p.problem(path, ProblemTooManyParts, fmt.Sprintf("more than %d parts", p.opts.MaxParts))
		return
	}
	if depth > p.opts.MaxDepth {
		p.problem(path, ProblemTooDeep, fmt.Sprintf("nested deeper than %d", p.opts.MaxDepth))
		return
	}
	switch {
	case gomessage.IsUnknownCharset(readErr):
		p.problem(path, ProblemBadCharset, readErr.Error())
	case gomessage.IsUnknownEncoding(readErr):
		p.problem(path, ProblemBadEncoding, readErr.Error())
	}
	mediaType, params, err := e.Header.ContentType()
	if err != nil {
		mediaType = "text/plain"
		if e.Header.Get("Content-Type") != "" {
			p.problem(path, ProblemBadHeader, "Content-Type: "+err.Error())
		}
	}
	if mediaType == "message/delivery-status" {
		p.m.Auto.Bounce = true
	}
	if mr := e.MultipartReader(); mr != nil && strings.HasPrefix(mediaType, "multipart/") {
		for i := 1; ; i++ {
			part, err := mr.NextPart()
			if err == io.EOF {
				return
			}
			if part == nil {
				if err != nil {
					p.problem(path, ProblemTruncatedMIME, err.Error())
				}
				return
			}
			p.walk(part, err, partPath(path, i), depth+1, mediaType)
			if p.parts > p.opts.MaxParts || depth+1 > p.opts.MaxDepth {
				if p.parts > p.opts.MaxParts {
					return
				}
			}
		}
	}
	p.leaf(e, path, mediaType, params, parentType)
}

func (p *parser) leaf(e *gomessage.Entity, path, mediaType string, params map[string]string, parentType string) {
	if path == "" {
		path = "1"
	}
	data, err := io.ReadAll(io.LimitReader(e.Body, p.budget+1))
	if int64(len(data)) > p.budget {
		data = data[:p.budget]
		p.problem(path, ProblemTooLarge, "decoded content over the parse budget, cut")
	}
	p.budget -= int64(len(data))
	if err != nil {
		var code string
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF), strings.Contains(err.Error(), "multipart"):
			code = ProblemTruncatedMIME
		default:
			code = ProblemBadEncoding
		}
		p.problem(path, code, err.Error())
	}
	disp, dparams, _ := e.Header.ContentDisposition()
	filename := dparams["filename"]
	if filename == "" {
		filename = params["name"]
	}
	if filename != "" {
		filename = p.decodeHeader("filename", filename)
	}
	cid := strings.Trim(strings.TrimSpace(e.Header.Get("Content-Id")), "<>")
	isText := mediaType == "text/plain" || mediaType == "text/html"
	if isText && filename == "" && !strings.EqualFold(disp, "attachment") {
		s := strings.ReplaceAll(p.utf8(path, string(data)), "\r\n", "\n")
		if mediaType == "text/html" {
			if p.m.HTML == "" {
				p.m.HTML = s
			}
			return
		}
		if p.m.Text != "" {
			p.m.Text = strings.TrimRight(p.m.Text, "\r\n") + "\n"
		}
		p.m.Text += s
		return
	}
	if filename == "" && mediaType == "message/rfc822" {
		filename = "message.eml"
		if sub := Parse(data, &p.opts).Subject; sub != "" {
			filename = sub + ".eml"
		}
	}
	sum := sha256.Sum256(data)
	p.m.Attachments = append(p.m.Attachments, Attachment{
		Filename:    p.utf8(path, filename),
		ContentType: mediaType,
		Size:        int64(len(data)),
		SHA256:      hex.EncodeToString(sum[:]),
		ContentID:   p.utf8(path, cid),
		Inline:      strings.EqualFold(disp, "inline") || cid != "" && parentType == "multipart/related",
		Content:     data,
	})
}
