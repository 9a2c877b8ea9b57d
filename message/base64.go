package message

import (
	"bytes"
	"encoding/base64"
	"io"
	"sync"
)

var base64Alphabet = func() (t [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" {
		t[c] = true
	}
	return t
}()

// decodeBase64 decodes a base64 body as RFC 2045 §6.8 asks: line breaks
// and white space are dropped silently, other characters outside the
// alphabet are dropped and noted (junk), decoding stops at the "=" padding
// and alphabet data after it is noted (trailing) and ignored; missing
// padding is fine. src is overwritten.
func decodeBase64(src []byte) (data []byte, junk, trailing bool, err error) {
	src = dropLineBreaks(src)
	data = make([]byte, len(src)*3/4+3)
	// Well-formed content (the alphabet, padding) decodes in one go; the
	// decoder's fast path takes 8 characters at a time, but only between
	// line breaks, hence dropLineBreaks.
	if n, err := base64.StdEncoding.Decode(data, src); err == nil {
		return data[:n], false, false, nil
	}
	w, padded := 0, false
	for _, c := range src {
		switch {
		case base64Alphabet[c]:
			if padded {
				trailing = true
				continue
			}
			src[w] = c
			w++
		case c == '=':
			padded = true
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		default:
			junk = true
		}
	}
	n, err := base64.RawStdEncoding.Decode(data, src[:w])
	return data[:n], junk, trailing, err
}

// dropLineBreaks removes every LF, and the CR before it, from b in place.
func dropLineBreaks(b []byte) []byte {
	w, rest := 0, b
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			w += copy(b[w:], rest)
			return b[:w]
		}
		line := rest[:i]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		w += copy(b[w:], line)
		rest = rest[i+1:]
	}
}

// scratchPool keeps the buffers parts are read into before decoding.
var scratchPool sync.Pool // of *[]byte

// maxPooled bounds the buffers kept in scratchPool.
const maxPooled = 8 << 20

// readAll reads r to its end into the parser's scratch buffer, which the
// next call reuses: the result is only valid until then. A part is never
// longer than the message, so the buffer starts that large.
func (p *parser) readAll(r io.Reader) ([]byte, error) {
	if p.scratch == nil {
		if b, ok := scratchPool.Get().(*[]byte); ok && cap(*b) >= p.size {
			p.scratch = *b
		} else {
			p.scratch = make([]byte, 0, max(p.size, 4<<10))
		}
	}
	b := p.scratch[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			p.scratch = b
			if err == io.EOF {
				err = nil
			}
			return b, err
		}
	}
}

// release hands the scratch buffer back to the pool.
func (p *parser) release() {
	if p.scratch != nil && cap(p.scratch) <= maxPooled {
		b := p.scratch[:0]
		scratchPool.Put(&b)
	}
	p.scratch = nil
}
