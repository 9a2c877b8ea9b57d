// Package relay is a TCP relay for tests and benchmarks: it forwards every
// connection it accepts on loopback to a target address, byte for byte
// (TLS passes through untouched). It can hold back what the server sends,
// so a test sees a server that stops answering mid-session without
// changing the server, and it can delay each direction by a fixed time
// without limiting bandwidth, so a benchmark on loopback sees the round
// trip of a real network.
package relay

import (
	"net"
	"sync"
	"time"
)

// Relay forwards connections to one target. Its methods are safe for
// concurrent use.
type Relay struct {
	ln     net.Listener
	target string
	delay  time.Duration // one way, each direction

	mu    sync.Mutex
	cond  *sync.Cond
	held  bool
	conns map[net.Conn]struct{}
	done  bool
}

// Start listens on a free loopback port and relays to target.
func Start(target string) (*Relay, error) { return StartDelayed(target, 0) }

// StartDelayed is Start with every byte delivered oneWay after it was
// read, in each direction: a round trip of 2 × oneWay. Bytes keep
// flowing meanwhile (the delay is latency, not a bandwidth limit).
func StartDelayed(target string, oneWay time.Duration) (*Relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Relay{ln: ln, target: target, delay: oneWay, conns: map[net.Conn]struct{}{}}
	r.cond = sync.NewCond(&r.mu)
	go r.accept()
	return r, nil
}

// Addr is the relay's host:port.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

// Hold stops the server's bytes from reaching any client, on open
// connections and new ones, until Release; connections stay open.
func (r *Relay) Hold() {
	r.mu.Lock()
	r.held = true
	r.mu.Unlock()
}

// Release lets the server's bytes flow again.
func (r *Relay) Release() {
	r.mu.Lock()
	r.held = false
	r.cond.Broadcast()
	r.mu.Unlock()
}

// Close stops listening and ends every relayed connection.
func (r *Relay) Close() error {
	r.mu.Lock()
	r.done = true
	for c := range r.conns {
		c.Close()
	}
	r.cond.Broadcast()
	r.mu.Unlock()
	return r.ln.Close()
}

func (r *Relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		c.Close()
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *Relay) accept() {
	for {
		client, err := r.ln.Accept()
		if err != nil {
			return
		}
		go r.serve(client)
	}
}

func (r *Relay) serve(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", r.target)
	if err != nil {
		return
	}
	defer server.Close()
	if !r.track(client) || !r.track(server) {
		return
	}
	defer func() {
		r.mu.Lock()
		delete(r.conns, client)
		delete(r.conns, server)
		r.mu.Unlock()
	}()
	go func() {
		r.pipe(server, client, false)
		server.Close()
	}()
	r.pipe(client, server, true)
}

// chunk is bytes read, and when they may be written.
type chunk struct {
	b  []byte
	at time.Time
}

// pipe copies from src to dst, each chunk delayed by r.delay; held
// (server to client only) stops it while the relay holds.
func (r *Relay) pipe(dst, src net.Conn, held bool) {
	if r.delay <= 0 {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if held && !r.wait() {
					return
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	q := make(chan chunk, 4096)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{buf[:n], time.Now().Add(r.delay)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		if d := time.Until(c.at); d > 0 {
			time.Sleep(d) // the delay is what this relay is for
		}
		if held && !r.wait() {
			return
		}
		if _, err := dst.Write(c.b); err != nil {
			return
		}
	}
}

// wait blocks while the relay holds; false once it is closed.
func (r *Relay) wait() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.held && !r.done {
		r.cond.Wait()
	}
	return !r.done
}
