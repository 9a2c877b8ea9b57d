package ews

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// node is one element of a decoded response. Names carry the namespace URI
// the decoder resolved, never the prefix.
type node struct {
	name     xml.Name
	attrs    []xml.Attr
	text     []byte // character data, white-space-only runs left out
	children []*node
}

// Limits on one decoded document. The byte cap (Options.MaxResponseBytes)
// bounds the text; these bound what markup costs once decoded, which is
// some 30 times its size for tiny elements such as <a/>:
//   - maxDepth: EWS responses are a dozen levels deep.
//   - maxNodes: elements plus attributes. The largest legitimate responses
//     (SyncFolderItems with 512 changes, FindFolder with 500 folders, the
//     headers of 10 messages) have a few thousand; 50,000 costs about 8 MiB.
//   - maxTagBytes: one start tag with its attributes. encoding/xml builds a
//     tag's attribute list before the node count can stop it, so a tag is
//     cut off while its bytes stream in.
const (
	maxDepth    = 64
	maxNodes    = 50_000
	maxTagBytes = 64 << 10
)

// parseTree reads one XML document into a tree of nodes. A document over
// the limits above is an *overLimitError.
func parseTree(r io.Reader) (*node, error) {
	d := xml.NewDecoder(&tagLimiter{r: r, max: maxTagBytes})
	d.CharsetReader = func(charset string, in io.Reader) (io.Reader, error) {
		if strings.EqualFold(charset, "utf-8") || strings.EqualFold(charset, "us-ascii") {
			return in, nil
		}
		return nil, fmt.Errorf("unsupported XML charset %q", charset)
	}
	var root *node
	var stack []*node
	budget := maxNodes
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var ol *overLimitError
			if errors.As(err, &ol) {
				return nil, ol
			}
			return nil, fmt.Errorf("parse XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= maxDepth {
				return nil, fmt.Errorf("parse XML: elements nested deeper than %d", maxDepth)
			}
			if budget -= 1 + len(t.Attr); budget < 0 {
				return nil, &overLimitError{what: fmt.Sprintf("more than %d elements and attributes", maxNodes)}
			}
			n := &node{name: t.Name, attrs: t.Attr}
			if len(stack) == 0 {
				if root != nil {
					return nil, errors.New("parse XML: more than one root element")
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 && len(bytes.TrimSpace(t)) > 0 {
				top := stack[len(stack)-1]
				top.text = append(top.text, t...)
			}
		}
	}
	if root == nil {
		return nil, errors.New("parse XML: no root element")
	}
	return root, nil
}

// overLimitError is a response that decodes to more than the limits allow
// (see maxNodes, maxTagBytes) or that is larger than its byte cap.
type overLimitError struct{ what string }

func (e *overLimitError) Error() string { return "EWS response " + e.what }

// tagLimiter passes an XML byte stream through and fails with an
// *overLimitError as soon as one tag (from < to >, quoted attribute values
// included) is longer than max bytes. Comments, CDATA sections, processing
// instructions and directives are passed through uncounted: the decoder
// keeps them as one copy, without amplification.
type tagLimiter struct {
	r     io.Reader
	max   int
	state int
	n     int    // bytes of the current tag
	quote byte   // the quote an attribute value opened
	end   string // what ends the current comment, CDATA, PI or directive
	seen  int    // how much of end has been matched
}

const (
	inText    = iota
	afterLT   // just after <
	afterBang // just after <!
	inTag     // inside a start or end tag
	inQuote   // inside a quoted attribute value
	inOther   // inside a comment, CDATA section, PI or directive
)

// Read implements io.Reader.
func (l *tagLimiter) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for i := 0; i < n; i++ {
		if !l.step(p[i]) {
			return i, &overLimitError{what: fmt.Sprintf("has a tag longer than %d KiB", l.max>>10)}
		}
	}
	return n, err
}

// step advances the state by one byte; false means the tag is too long.
func (l *tagLimiter) step(b byte) bool {
	switch l.state {
	case inText:
		if b == '<' {
			l.state, l.n = afterLT, 1
		}
	case afterLT:
		switch b {
		case '?':
			l.other("?>")
		case '!':
			l.state = afterBang
		default:
			l.state = inTag
			return l.tag(b)
		}
	case afterBang:
		switch b {
		case '-':
			l.other("-->")
		case '[':
			l.other("]]>")
		default:
			l.other(">")
		}
	case inTag, inQuote:
		return l.tag(b)
	case inOther:
		switch {
		case b == l.end[l.seen]:
			if l.seen++; l.seen == len(l.end) {
				l.state = inText
			}
		case b == l.end[0] && l.seen == 2 && l.end[1] == b:
			// "--->" or "]]]>": the last two bytes still match
		case b == l.end[0]:
			l.seen = 1
		default:
			l.seen = 0
		}
	}
	return true
}

func (l *tagLimiter) other(end string) { l.state, l.end, l.seen = inOther, end, 0 }

// tag counts one byte of a tag and follows its quoting.
func (l *tagLimiter) tag(b byte) bool {
	if l.n++; l.n > l.max {
		return false
	}
	switch {
	case l.state == inQuote:
		if b == l.quote {
			l.state = inTag
		}
	case b == '"' || b == '\'':
		l.state, l.quote = inQuote, b
	case b == '>':
		l.state = inText
	}
	return true
}

// is reports whether n is the element local in namespace ns. An element
// without a namespace matches any ns: some servers and proxies drop them.
func (n *node) is(ns, local string) bool {
	return n != nil && n.name.Local == local && (n.name.Space == ns || n.name.Space == "")
}

// child returns the first child element ns:local, or nil.
func (n *node) child(ns, local string) *node {
	if n == nil {
		return nil
	}
	for _, c := range n.children {
		if c.is(ns, local) {
			return c
		}
	}
	return nil
}

// path follows children in namespace ns.
func (n *node) path(ns string, locals ...string) *node {
	for _, l := range locals {
		n = n.child(ns, l)
	}
	return n
}

// all returns every child element ns:local.
func (n *node) all(ns, local string) []*node {
	if n == nil {
		return nil
	}
	var out []*node
	for _, c := range n.children {
		if c.is(ns, local) {
			out = append(out, c)
		}
	}
	return out
}

// first returns the first child element in any namespace, or nil.
func (n *node) first() *node {
	if n == nil || len(n.children) == 0 {
		return nil
	}
	return n.children[0]
}

// value is the trimmed text of n ("" for nil).
func (n *node) value() string {
	if n == nil {
		return ""
	}
	return string(bytes.TrimSpace(n.text))
}

// attr returns the attribute local (any namespace or none).
func (n *node) attr(local string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.attrs {
		if a.Name.Local == local && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}
