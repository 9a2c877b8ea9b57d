package imap

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

// Read limits and deadlines. Every zero field of Options falls back to one
// of these.
const (
	// defaultReadTimeout is how long a command may wait for the server's
	// next bytes.
	defaultReadTimeout = 60 * time.Second
	// defaultCommandTimeout bounds one command from start to its tagged
	// reply, however steadily the server trickles bytes. A batch of bodies
	// is one command: 16 MiB, or one message up to max_message_bytes, must
	// arrive within it.
	defaultCommandTimeout = 5 * time.Minute
	// defaultMaxLine bounds one response line outside literals, and every
	// literal that go-imap reads into memory itself. The longest honest
	// line we read is the UID SEARCH result of a big folder: Exchange
	// Online allows 1 million items per folder, whose UIDs of up to 8
	// digits plus a space make 9 MB. 16 MiB leaves room for that.
	defaultMaxLine = 16 << 20
	// maxBodyLiteral is the largest body literal (FETCH BODY[...]) that the
	// connection reads at all. Beyond the message's allowance a literal is
	// discarded as it arrives (bounded memory, see readLiteral), which
	// takes time but not memory; beyond this size it cannot be worth it
	// and the connection fails at once. Exchange refuses messages over
	// 150 MB.
	maxBodyLiteral = 4 << 30
)

// ErrServerLimit is wrapped by a LimitError: the server sent a line or a
// literal over the client's limits. The connection is closed; a new one may
// work (a broken middlebox), so the poller backs off as for other
// connection errors.
var ErrServerLimit = errors.New("server response over the client's limits")

// LimitError says which limit a server's response went over.
type LimitError struct {
	What  string // "line", "literal" or "body literal"
	Size  int64  // bytes seen or announced
	Limit int64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("server sent a %s of %d bytes or more, over the limit of %d: connection closed", e.What, e.Size, e.Limit)
}

// Unwrap makes errors.Is(err, ErrServerLimit) true.
func (e *LimitError) Unwrap() error { return ErrServerLimit }

// TimeoutError is a read that ran past its deadline: the server sent
// nothing for ReadTimeout, or a command took longer than CommandTimeout as
// a whole. The connection is closed. errors.Is(err, os.ErrDeadlineExceeded)
// is true.
type TimeoutError struct {
	Op      string        // what was being read: "greeting", "uid fetch bodies", "idle", ...
	After   time.Duration // the deadline that passed
	Overall bool          // CommandTimeout passed (else ReadTimeout)
}

func (e *TimeoutError) Error() string {
	if e.Overall {
		return fmt.Sprintf("%s: no complete reply from the server within %s: connection closed", e.Op, e.After)
	}
	return fmt.Sprintf("%s: the server sent nothing for %s: connection closed", e.Op, e.After)
}

// Unwrap makes errors.Is(err, os.ErrDeadlineExceeded) true.
func (e *TimeoutError) Unwrap() error { return os.ErrDeadlineExceeded }

// Timeout reports true, as net.Error timeouts do.
func (e *TimeoutError) Timeout() bool { return true }

// conn sits between the TLS connection and imapclient. It owns every read
// deadline (imapclient's own calls to SetReadDeadline are ignored) and
// follows the IMAP framing just enough to bound lines and literals: bytes
// since the last LF outside literals, and "{N}" or "{N+}" at the end of a
// line announcing N literal bytes. Its first failure is kept and returned
// by every later Read, so the Source can report it whatever go-imap made of
// it.
//
// Reads have a deadline only while an operation is in progress (begin):
// between commands the server has nothing to say and the connection may
// rest for as long as the poll interval.
type conn struct {
	net.Conn
	maxLine int64

	mu    sync.Mutex
	ops   []*op
	fault error

	// framing, used by the one goroutine that reads
	line int64 // bytes since the last LF, outside literals
	lit  int64 // literal bytes still to come
	tail []byte
}

// op is one operation in progress on the connection.
type op struct {
	name  string
	quiet time.Duration // longest silence
	start time.Time
	until time.Time // end of the whole operation
}

func newConn(c net.Conn, maxLine int64) *conn {
	return &conn{Conn: c, maxLine: maxLine, tail: make([]byte, 0, tailLen)}
}

// tailLen is how much of the current line is kept to recognise a literal
// announcement and what precedes it.
const tailLen = 32

// begin starts an operation: until the returned func is called, reads fail
// after quiet without bytes, or overall after begin. Operations may
// overlap (a prefetch during an after-read action); the strictest applies.
func (c *conn) begin(name string, quiet, overall time.Duration) func() {
	now := time.Now()
	o := &op{name: name, quiet: quiet, start: now, until: now.Add(overall)}
	c.mu.Lock()
	c.ops = append(c.ops, o)
	c.armLocked(now)
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		for i, x := range c.ops {
			if x == o {
				c.ops = append(c.ops[:i], c.ops[i+1:]...)
				break
			}
		}
		c.armLocked(time.Now())
		c.mu.Unlock()
	}
}

// armLocked sets the read deadline for the operations in progress, and
// returns it (zero: none).
func (c *conn) armLocked(now time.Time) time.Time {
	var dl time.Time
	for _, o := range c.ops {
		d := now.Add(o.quiet)
		if o.until.Before(d) {
			d = o.until
		}
		if dl.IsZero() || d.Before(dl) {
			dl = d
		}
	}
	c.Conn.SetReadDeadline(dl)
	return dl
}

// expiredLocked returns the timeout to report if the deadline in force
// has passed, or nil if it has not (the operations changed meanwhile).
func (c *conn) expiredLocked(now time.Time, last time.Time) error {
	var worst *TimeoutError
	for _, o := range c.ops {
		switch {
		case !now.Before(o.until):
			return &TimeoutError{Op: o.name, After: o.until.Sub(o.start).Round(time.Millisecond), Overall: true}
		case worst == nil && !now.Before(last.Add(o.quiet)):
			worst = &TimeoutError{Op: o.name, After: o.quiet}
		}
	}
	if worst == nil {
		return nil
	}
	return worst
}

// SetReadDeadline ignores imapclient's deadlines: conn sets its own.
func (c *conn) SetReadDeadline(time.Time) error { return nil }

// SetDeadline applies t to writes only, for the same reason.
func (c *conn) SetDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(t) }

// Read reads from the connection under the deadline of the operations in
// progress and checks the framing of what it read.
func (c *conn) Read(p []byte) (int, error) {
	for {
		c.mu.Lock()
		if c.fault != nil {
			c.mu.Unlock()
			return 0, c.fault
		}
		last := time.Now()
		c.armLocked(last)
		c.mu.Unlock()

		n, err := c.Conn.Read(p)
		if n > 0 {
			if ferr := c.scan(p[:n]); ferr != nil {
				c.fail(ferr)
				return 0, ferr
			}
		}
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			c.mu.Lock()
			terr := c.expiredLocked(time.Now(), last)
			if terr == nil {
				c.mu.Unlock()
				if n > 0 {
					return n, nil
				}
				continue // a stale deadline: the operations changed
			}
			if c.fault == nil {
				c.fault = terr
			}
			c.mu.Unlock()
			return n, terr
		}
		return n, err
	}
}

func (c *conn) fail(err error) {
	c.mu.Lock()
	if c.fault == nil {
		c.fault = err
	}
	c.mu.Unlock()
}

// failure returns the first limit or deadline the connection ran into.
func (c *conn) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fault
}

// scan follows the framing over b.
func (c *conn) scan(b []byte) error {
	for len(b) > 0 {
		if c.lit > 0 {
			k := min(int64(len(b)), c.lit)
			c.lit -= k
			b = b[k:]
			continue
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			i = len(b)
		}
		c.line += int64(i)
		c.keep(b[:i])
		if c.line > c.maxLine {
			return &LimitError{What: "line", Size: c.line, Limit: c.maxLine}
		}
		if i == len(b) {
			return nil
		}
		// b[i] is LF: the line ends, perhaps with a literal announcement.
		n, body, ok := announced(c.tail)
		c.line, c.tail = 0, c.tail[:0]
		b = b[i+1:]
		if !ok {
			continue
		}
		limit, what := c.maxLine, "literal"
		if body {
			limit, what = maxBodyLiteral, "body literal"
		}
		if n > limit {
			return &LimitError{What: what, Size: n, Limit: limit}
		}
		c.lit = n
	}
	return nil
}

// keep appends b to the tail of the current line, keeping its last tailLen
// bytes.
func (c *conn) keep(b []byte) {
	if len(b) >= tailLen {
		c.tail = append(c.tail[:0], b[len(b)-tailLen:]...)
		return
	}
	if over := len(c.tail) + len(b) - tailLen; over > 0 {
		c.tail = append(c.tail[:0], c.tail[over:]...)
	}
	c.tail = append(c.tail, b...)
}

// announced parses a literal announcement at the end of a line (without
// its LF): "{N}", "{N+}" or "~{N}", optionally followed by CR. body is
// true when the literal is a FETCH body section ("BODY[...] {N}",
// "BODY[...]<0> {N}", "BINARY[...] ~{N}"), which the Source reads itself
// under the message's allowance; go-imap reads every other literal into
// memory. A number too long to parse counts as larger than any limit.
func announced(line []byte) (n int64, body, ok bool) {
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false, false
	}
	end := len(line) - 1
	if line[end-1] == '+' {
		end--
	}
	start := end
	for start > 0 && line[start-1] >= '0' && line[start-1] <= '9' {
		start--
	}
	if start == end || start == 0 || line[start-1] != '{' {
		return 0, false, false
	}
	digits := line[start:end]
	n, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil {
		n = 1<<63 - 1
	}
	before := line[:start-1]
	if len(before) > 0 && before[len(before)-1] == '~' {
		before = before[:len(before)-1]
	}
	if len(before) == 0 || before[len(before)-1] != ' ' {
		return n, false, true
	}
	before = before[:len(before)-1]
	if len(before) > 0 && before[len(before)-1] == '>' { // <origin>
		for len(before) > 0 && before[len(before)-1] != '<' {
			before = before[:len(before)-1]
		}
		if len(before) > 0 {
			before = before[:len(before)-1]
		}
	}
	body = len(before) > 0 && before[len(before)-1] == ']'
	return n, body, true
}
