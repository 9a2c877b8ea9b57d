package ews

import (
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
	text     strings.Builder
	children []*node
}

// maxDepth bounds element nesting; EWS responses are a dozen levels deep.
const maxDepth = 64

// parseTree reads one XML document into a tree of nodes.
func parseTree(r io.Reader) (*node, error) {
	d := xml.NewDecoder(r)
	d.CharsetReader = func(charset string, in io.Reader) (io.Reader, error) {
		if strings.EqualFold(charset, "utf-8") || strings.EqualFold(charset, "us-ascii") {
			return in, nil
		}
		return nil, fmt.Errorf("unsupported XML charset %q", charset)
	}
	var root *node
	var stack []*node
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parse XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= maxDepth {
				return nil, fmt.Errorf("parse XML: elements nested deeper than %d", maxDepth)
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
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			}
		}
	}
	if root == nil {
		return nil, errors.New("parse XML: no root element")
	}
	return root, nil
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
	return strings.TrimSpace(n.text.String())
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
