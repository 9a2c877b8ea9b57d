package ews

import (
	"io"
	"net/http"
	"sync"

	ntlmssp "github.com/Azure/go-ntlmssp"
)

// NTLM authenticates connections, not requests: its three legs must use
// one connection, and no other request may come between them. An
// http.Transport hands a pooled connection to whichever request asks
// first, so under concurrency the legs of two requests mix and Exchange
// refuses them. ntlmPool therefore gives each request in flight a
// connection of its own: transports of one connection each, each used by
// one request at a time (checked out until its response body is closed),
// made when all are busy. The Client's bound on requests in flight bounds
// them; a connection stays authenticated, so later requests on it need no
// handshake.
type ntlmPool struct {
	base http.RoundTripper
	free chan http.RoundTripper
}

// maxIdleNTLM bounds the idle single-connection transports kept.
const maxIdleNTLM = 64

// newNTLMPool makes single-connection NTLM transports from base (an
// *http.Transport is cloned; any other RoundTripper is shared).
func newNTLMPool(base http.RoundTripper) *ntlmPool {
	return &ntlmPool{base: base, free: make(chan http.RoundTripper, maxIdleNTLM)}
}

// get takes an idle transport, or makes one.
func (p *ntlmPool) get() http.RoundTripper {
	select {
	case rt := <-p.free:
		return rt
	default:
	}
	rt := p.base
	if t, ok := rt.(*http.Transport); ok {
		t = t.Clone()
		t.MaxConnsPerHost, t.MaxIdleConnsPerHost = 1, 1
		rt = t
	}
	return ntlmssp.Negotiator{RoundTripper: rt}
}

// put keeps rt for the next request, or closes its connection.
func (p *ntlmPool) put(rt http.RoundTripper) {
	select {
	case p.free <- rt:
	default:
		if t, ok := rt.(ntlmssp.Negotiator).RoundTripper.(*http.Transport); ok { // a clone of base: its own connection
			t.CloseIdleConnections()
		}
	}
}

// RoundTrip implements http.RoundTripper.
func (p *ntlmPool) RoundTrip(req *http.Request) (*http.Response, error) {
	rt := p.get()
	resp, err := rt.RoundTrip(req)
	if err != nil {
		p.put(rt)
		return nil, err
	}
	resp.Body = &returnOnClose{ReadCloser: resp.Body, put: func() { p.put(rt) }}
	return resp, nil
}

// returnOnClose gives the transport back when the body is closed.
type returnOnClose struct {
	io.ReadCloser
	once sync.Once
	put  func()
}

func (r *returnOnClose) Close() error {
	err := r.ReadCloser.Close()
	r.once.Do(r.put)
	return err
}
