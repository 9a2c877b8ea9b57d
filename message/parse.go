package message

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	gomessage "github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // windows-125x, ISO-8859-x, ISO-2022-JP, GB18030, Shift_JIS, KOI8-R, ...
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
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
	ProblemTooLarge       = "too_large"        // over the poller's max_message_bytes (set by the poller), or decoded content over Parse's budget (cut)
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
	budget int64    // decoded bytes left
	texts  []string // text/plain body pieces, in order
	html   []string // text/html body pieces, in order
	seen   map[string]bool
	// scratch holds a part's encoded content while it is decoded.
	scratch []byte
	size    int // of the raw message
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
	p.size = len(raw)
	defer p.release()
	defer func() {
		if r := recover(); r != nil {
			p.problem("", ProblemBadEncoding, fmt.Sprintf("parser stopped: %v", r))
			m = p.m
		}
	}()
	p.parse(raw)
	return p.m
}

// maxDetail bounds a Problem's Detail, in bytes.
const maxDetail = 300

func (p *parser) problem(part, code, detail string) {
	if len(detail) > maxDetail { // details quote the input, which may be huge
		detail = detail[:maxDetail] + "…"
	}
	detail = strings.ToValidUTF8(detail, "\uFFFD") // errors may quote the input
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
	within := raw // a bare-LF blank line counts only if it comes first
	if i >= 0 {
		within = raw[:i+1]
	}
	j := bytes.Index(within, []byte("\n\n"))
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
	th, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw[:hlen])))
	if err != nil { // skip the lines that are not header fields, keep the rest
		p.problem("", ProblemBadHeader, errText(err))
		th, err = textproto.ReadHeader(bufio.NewReader(bytes.NewReader(headerFieldsOnly(raw[:hlen]))))
	}
	if err != nil {
		p.m.Text = strings.ReplaceAll(p.utf8("", string(raw)), "\r\n", "\n")
		return
	}
	h := gomessage.Header{Header: th}
	p.header(h)
	p.walk(h, bytes.NewReader(raw[hlen:]), "", 0, "")
	p.m.Text = strings.TrimRight(joinBodies(p.texts), "\r\n")
	if p.m.Text != "" {
		p.m.Text += "\n"
	}
	p.m.HTML = joinBodies(p.html)
}

// joinBodies joins the pieces of a body (several text parts, or HTML
// split around an inline image): each piece but the last loses its
// trailing line breaks and is followed by exactly one.
func joinBodies(pieces []string) string {
	var b strings.Builder
	for i, s := range pieces {
		if i < len(pieces)-1 {
			if s = strings.TrimRight(s, "\r\n"); s == "" {
				continue
			}
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(s)
	}
	return b.String()
}

// headerFieldsOnly drops the lines of a header block that are neither a
// "Name: value" field nor the continuation of one.
func headerFieldsOnly(head []byte) []byte {
	var out []byte
	inField := false
	for _, line := range bytes.SplitAfter(head, []byte("\n")) {
		trimmed := bytes.TrimRight(line, "\r\n")
		switch {
		case len(trimmed) == 0:
			out = append(out, line...)
			inField = false
			continue
		case trimmed[0] == ' ' || trimmed[0] == '\t':
			if !inField {
				continue
			}
		default:
			name, _, ok := bytes.Cut(trimmed, []byte(":"))
			if inField = ok && len(name) > 0 && !bytes.ContainsAny(name, " \t"); !inField {
				continue
			}
		}
		out = append(out, line...)
	}
	return out
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

// decodeHeader decodes RFC 2047 words (see decodeWords); raw 8-bit bytes
// are read as windows-1252.
func (p *parser) decodeHeader(name, v string) string {
	v = p.latin1(name, v)
	return p.utf8("", p.decodeWords(name, v))
}

func (p *parser) header(h gomessage.Header) {
	mh := gomail.Header{Header: h}
	fields := h.Fields()
	for fields.Next() {
		name := fields.Key()
		if raw, err := fields.Raw(); err == nil { // the name as written, not canonicalised
			if n, _, ok := bytes.Cut(raw, []byte(":")); ok && len(bytes.TrimSpace(n)) > 0 {
				name = p.utf8("", string(bytes.TrimSpace(n)))
			}
		}
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
	if strings.Join(strings.Fields(h.Get("Return-Path")), "") == "<>" {
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
// attachments. body is the entity's raw (still transfer-encoded) content;
// parentType is the enclosing multipart's media type.
func (p *parser) walk(h gomessage.Header, body io.Reader, path string, depth int, parentType string) {
	p.parts++
	if p.parts > p.opts.MaxParts {
		p.problem(path, ProblemTooManyParts, fmt.Sprintf("more than %d parts", p.opts.MaxParts))
		return
	}
	if depth > p.opts.MaxDepth {
		p.problem(path, ProblemTooDeep, fmt.Sprintf("nested deeper than %d", p.opts.MaxDepth))
		return
	}
	leafPath := path
	if leafPath == "" {
		leafPath = "1" // the body of a single-part message is part 1, as in IMAP
	}
	mediaType, params := p.params(h, "Content-Type", leafPath)
	if mediaType == "" || !strings.Contains(mediaType, "/") {
		mediaType = "text/plain" // RFC 2045 §5.2
	}
	if mediaType == "message/delivery-status" {
		p.m.Auto.Bounce = true
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		if params["boundary"] == "" {
			p.problem(leafPath, ProblemBadHeader, "Content-Type: multipart without boundary")
		} else {
			p.multipart(body, params["boundary"], path, depth, mediaType)
			return
		}
	}
	p.leaf(h, body, leafPath, mediaType, params, parentType)
}

func (p *parser) multipart(body io.Reader, boundary, path string, depth int, mediaType string) {
	mr := textproto.NewMultipartReader(body, boundary)
	for i := 1; ; i++ {
		part, err := mr.NextPart()
		if err == io.EOF {
			return
		}
		if err != nil {
			if !p.truncatedWithin(path) { // a cut-off last part already said so
				p.problem(path, ProblemTruncatedMIME, err.Error())
			}
			return
		}
		p.walk(gomessage.Header{Header: part.Header}, part, partPath(path, i), depth+1, mediaType)
		if p.parts > p.opts.MaxParts {
			return
		}
	}
}

// truncatedWithin reports whether a truncated_mime problem was recorded
// for path or a part inside it.
func (p *parser) truncatedWithin(path string) bool {
	for _, pr := range p.m.Problems {
		if pr.Code == ProblemTruncatedMIME && (path == "" || pr.Part == path || strings.HasPrefix(pr.Part, path+".")) {
			return true
		}
	}
	return false
}

// decodeTransfer reads a leaf's content, undoing its
// Content-Transfer-Encoding only: attachments keep their bytes as sent.
func (p *parser) decodeTransfer(h gomessage.Header, body io.Reader, path string) []byte {
	var data []byte
	var err error
	var details []string // base64 trouble, when the part was read whole
	if cte := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))); cte == "base64" {
		var src []byte
		src, err = p.readAll(body)
		var junk, trailing bool
		var derr error
		data, junk, trailing, derr = decodeBase64(src)
		if err == nil { // the part was read whole: any trouble is the encoding's
			if junk {
				details = append(details, "characters outside the base64 alphabet skipped")
			}
			if trailing {
				details = append(details, "data after the padding ignored")
			}
			if derr != nil {
				details = append(details, derr.Error())
			}
		}
	} else {
		th := gomessage.Header{}
		if cte != "" {
			th.Set("Content-Transfer-Encoding", cte)
		}
		e, nerr := gomessage.New(th, body)
		if nerr != nil {
			p.problem(path, ProblemBadEncoding, nerr.Error())
		}
		data, err = io.ReadAll(io.LimitReader(e.Body, p.budget+1))
	}
	if int64(len(data)) > p.budget {
		data = data[:p.budget]
		p.problem(path, ProblemTooLarge, "decoded content over the parse budget, cut")
	}
	p.budget -= int64(len(data))
	if details != nil {
		p.problem(path, ProblemBadEncoding, "base64: "+strings.Join(details, "; "))
	}
	if err != nil {
		code := ProblemBadEncoding
		if errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "multipart") {
			code = ProblemTruncatedMIME
		}
		p.problem(path, code, err.Error())
	}
	return data
}

// text decodes a body part's bytes from its charset to UTF-8.
func (p *parser) text(data []byte, charset, path string) string {
	cs := strings.ToLower(strings.TrimSpace(charset))
	switch cs {
	case "", "us-ascii", "ascii", "utf-8", "utf8":
		if cs == "" && !utf8.Valid(data) { // undeclared 8-bit text: most often windows-1252
			p.problem(path, ProblemBadCharset, "no charset declared; 8-bit text read as windows-1252")
			if s, err := charmap.Windows1252.NewDecoder().Bytes(data); err == nil {
				return string(s)
			}
		}
		return p.utf8(path, string(data))
	}
	r, err := gomessage.CharsetReader(charset, bytes.NewReader(data))
	if err != nil {
		p.problem(path, ProblemBadCharset, err.Error())
		return p.utf8(path, string(data))
	}
	s, err := io.ReadAll(r)
	if err != nil {
		p.problem(path, ProblemBadCharset, charset+": "+err.Error())
	}
	return p.utf8(path, string(s))
}

func (p *parser) leaf(h gomessage.Header, body io.Reader, path, mediaType string, params map[string]string, parentType string) {
	data := p.decodeTransfer(h, body, path)
	disp, dparams := p.params(h, "Content-Disposition", path)
	filename := dparams["filename"]
	if filename == "" {
		filename = params["name"]
	}
	cid := strings.Trim(strings.TrimSpace(h.Get("Content-Id")), "<>")
	isText := mediaType == "text/plain" || mediaType == "text/html"
	if isText && filename == "" && disp != "attachment" {
		s := strings.ReplaceAll(p.text(data, params["charset"], path), "\r\n", "\n")
		if mediaType == "text/html" {
			p.html = append(p.html, s)
		} else {
			p.texts = append(p.texts, s)
		}
		return
	}
	if filename == "" && mediaType == "message/rfc822" {
		filename = p.messageName(data)
	}
	sum := sha256.Sum256(data)
	p.m.Attachments = append(p.m.Attachments, Attachment{
		Filename:    p.utf8(path, filename),
		ContentType: mediaType,
		Size:        int64(len(data)),
		SHA256:      hex.EncodeToString(sum[:]),
		ContentID:   p.utf8(path, cid),
		Inline:      disp == "inline" || cid != "" && parentType == "multipart/related",
		Content:     data,
	})
}

// messageName names an attached message after its subject, reading only
// its header.
func (p *parser) messageName(data []byte) string {
	r := bufio.NewReader(io.LimitReader(bytes.NewReader(data), int64(p.opts.MaxHeaderBytes)))
	h, err := textproto.ReadHeader(r)
	if err != nil {
		return "message.eml"
	}
	scratch := &parser{m: &Message{}, seen: map[string]bool{}}
	sub := scratch.decodeHeader("Subject", unfold(h.Get("Subject")))
	sub = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r < ' ' || r == 0x7f {
			return '_'
		}
		return r
	}, sub)
	if sub = strings.TrimSpace(sub); sub == "" {
		return "message.eml"
	}
	if r := []rune(sub); len(r) > 200 {
		sub = string(r[:200])
	}
	return sub + ".eml"
}

// params reads a Content-Type or Content-Disposition value leniently: the
// lower-cased type and its parameters, with RFC 2231 continuations and
// charsets (any charset, not only UTF-8), RFC 2047 words in quoted values
// (as Outlook writes them) and unquoted values with spaces. A value that
// a strict reader refuses is recorded as bad_header.
func (p *parser) params(h gomessage.Header, key, path string) (string, map[string]string) {
	v := unfold(h.Get(key))
	if v == "" {
		return "", map[string]string{}
	}
	if _, _, err := mime.ParseMediaType(v); err != nil {
		p.problem(path, ProblemBadHeader, key+": "+err.Error())
	}
	typ, rest, _ := strings.Cut(v, ";")
	params := map[string]string{}
	type segment struct {
		n       int
		val     string
		encoded bool
	}
	segs := map[string][]segment{}
	for n := 0; rest != "" && n < 100; n++ {
		rest = strings.TrimLeft(rest, " \t;")
		i := strings.IndexAny(rest, "=;")
		if i < 0 {
			break
		}
		if rest[i] == ';' {
			rest = rest[i+1:]
			continue
		}
		name := strings.ToLower(strings.TrimSpace(rest[:i]))
		rest = strings.TrimLeft(rest[i+1:], " \t")
		var val string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			j := 1
			for ; j < len(rest) && rest[j] != '"'; j++ {
				if rest[j] == '\\' && j+1 < len(rest) {
					j++
				}
				b.WriteByte(rest[j])
			}
			val, rest = b.String(), rest[min(j+1, len(rest)):]
			if k := strings.IndexByte(rest, ';'); k >= 0 {
				rest = rest[k+1:]
			} else {
				rest = ""
			}
		} else {
			k := strings.IndexByte(rest, ';')
			if k < 0 {
				k = len(rest)
			}
			val, rest = strings.TrimSpace(rest[:k]), rest[min(k+1, len(rest)):]
		}
		base, encoded := strings.CutSuffix(name, "*")
		idx := -1
		if j := strings.LastIndexByte(base, '*'); j >= 0 {
			if n, err := strconv.Atoi(base[j+1:]); err == nil && n >= 0 {
				idx, base = n, base[:j]
			}
		}
		if idx < 0 && !encoded {
			if _, dup := params[base]; !dup {
				params[base] = val
			}
			continue
		}
		segs[base] = append(segs[base], segment{max(idx, 0), val, encoded})
	}
	for name, ss := range segs {
		slices.SortStableFunc(ss, func(a, b segment) int { return a.n - b.n })
		var buf []byte
		charset := ""
		for i, s := range ss {
			val := s.val
			if s.encoded {
				if i == 0 {
					if cs, r, ok := strings.Cut(val, "'"); ok {
						if _, r2, ok := strings.Cut(r, "'"); ok {
							charset, val = cs, r2
						}
					}
				}
				buf = append(buf, percentDecode(val)...)
			} else {
				buf = append(buf, val...)
			}
		}
		params[name] = p.text(buf, charset, path)
	}
	for k, val := range params {
		if strings.Contains(val, "=?") {
			params[k] = p.decodeHeader(key, val)
		} else {
			params[k] = p.latin1(key, val)
		}
	}
	return strings.ToLower(strings.TrimSpace(typ)), params
}

func percentDecode(s string) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if b, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				out = append(out, byte(b))
				i += 2
				continue
			}
		}
		out = append(out, s[i])
	}
	return out
}
