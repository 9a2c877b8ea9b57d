package hostile

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	goimap "github.com/emersion/go-imap/v2"
)

// Faults are the server's misbehaviours. Several may be set at once; the
// zero value is an honest server.
type Faults struct {
	// StallGreeting accepts the connection and completes the TLS
	// handshake, then sends nothing, the greeting included, until
	// Release.
	StallGreeting bool
	// StallFetch holds every reply from the moment the client sends a
	// UID FETCH of a body section, until Release.
	StallFetch bool
	// DropUIDNext removes UIDNEXT from SELECT and EXAMINE replies and
	// from STATUS.
	DropUIDNext bool
	// DropUIDValidity does the same for UIDVALIDITY.
	DropUIDValidity bool
	// HideCaps are removed from every capability list the server sends.
	HideCaps []goimap.Cap
	// BodyLiteral, if set, gives the size to announce for a FETCH body
	// section literal whose real size is size. A larger announcement is
	// made good with filler after the message's real bytes, sent for as
	// long as the client reads; a smaller one cuts the message.
	BodyLiteral func(size int64) int64
	// Trickle sends the server's bytes one at a time with this pause
	// between them, from the greeting on.
	Trickle time.Duration
	// LongLine, if not zero, follows the greeting with a line of this
	// many bytes that never ends, then silence.
	LongLine int64
	// Reply answers a command with this text after its tag instead of
	// passing it to the server, e.g. "AUTHENTICATE": "BAD Request is
	// throttled. Suggested Backoff Time: 0 milliseconds". Keys are upper
	// case command names, "UID FETCH" style for UID commands.
	Reply map[string]string
	// EchoAuth refuses AUTHENTICATE with a NO whose text repeats the
	// client's initial response, as some broken servers do.
	EchoAuth bool
}

// proxyConn is one client connection and its connection to the backend.
type proxyConn struct {
	s       *Server
	client  net.Conn
	backend net.Conn
	done    chan struct{}
	once    sync.Once
	wmu     sync.Mutex // writes to client
	held    bool       // StallFetch fired: hold the server's bytes
	hmu     sync.Mutex
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", s.backend.Addr().String())
		if err != nil {
			c.Close()
			continue
		}
		pc := &proxyConn{s: s, client: c, backend: b, done: make(chan struct{})}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			pc.close()
			return
		}
		s.conns[pc] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(2)
		go func() { defer s.wg.Done(); pc.fromClient() }()
		go func() { defer s.wg.Done(); pc.fromServer() }()
	}
}

func (pc *proxyConn) close() {
	pc.once.Do(func() {
		close(pc.done)
		pc.client.Close()
		pc.backend.Close()
		pc.s.mu.Lock()
		delete(pc.s.conns, pc)
		pc.s.mu.Unlock()
	})
}

// write sends p to the client as it is.
func (pc *proxyConn) write(p []byte) error {
	pc.wmu.Lock()
	defer pc.wmu.Unlock()
	_, err := pc.client.Write(p)
	return err
}

// send sends the server's bytes p to the client, under the stalls and
// the trickle.
func (pc *proxyConn) send(p []byte) error {
	f, release := pc.s.current()
	pc.hmu.Lock()
	held := pc.held && f.StallFetch
	pc.hmu.Unlock()
	if held {
		select {
		case <-release:
		case <-pc.done:
			return net.ErrClosed
		}
	}
	if f.Trickle <= 0 {
		return pc.write(p)
	}
	t := time.NewTimer(f.Trickle)
	defer t.Stop()
	for i := range p {
		if err := pc.write(p[i : i+1]); err != nil {
			return err
		}
		t.Reset(f.Trickle)
		select { // the fault's pace, not a test's synchronisation
		case <-t.C:
		case <-pc.done:
			return net.ErrClosed
		}
	}
	return nil
}

// hold waits until Release or the end of the connection.
func (pc *proxyConn) hold() bool {
	_, release := pc.s.current()
	select {
	case <-release:
		return true
	case <-pc.done:
		return false
	}
}

// fromClient passes the client's commands to the server, or answers them
// itself.
func (pc *proxyConn) fromClient() {
	defer pc.close()
	br := bufio.NewReader(pc.client)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		tag, cmd, rest := command(line)
		f, _ := pc.s.current()
		if cmd == "AUTHENTICATE" || cmd == "LOGIN" {
			pc.s.mu.Lock()
			pc.s.logins++
			pc.s.mu.Unlock()
		}
		if cmd == "AUTHENTICATE" && f.EchoAuth {
			ir := strings.TrimSpace(rest)
			if i := strings.LastIndexByte(ir, ' '); i >= 0 {
				ir = ir[i+1:]
			}
			if pc.write([]byte(tag+" NO [AUTHENTICATIONFAILED] Invalid credentials: "+ir+"\r\n")) != nil {
				return
			}
			continue
		}
		if r, ok := f.Reply[cmd]; ok && tag != "" {
			if pc.write([]byte(tag+" "+r+"\r\n")) != nil {
				return
			}
			continue
		}
		if f.StallFetch && cmd == "UID FETCH" && strings.Contains(strings.ToUpper(rest), "BODY") {
			pc.hmu.Lock()
			pc.held = true
			pc.hmu.Unlock()
		}
		if _, err := io.WriteString(pc.backend, line); err != nil {
			return
		}
		if n, ok := announcedLiteral(line); ok {
			if _, err := io.CopyN(pc.backend, br, n); err != nil {
				return
			}
		}
	}
}

// command splits a client line into its tag, its command name (upper
// case, "UID FETCH" for UID commands) and the rest.
func command(line string) (tag, name, rest string) {
	fields := strings.SplitN(strings.TrimRight(line, "\r\n"), " ", 3)
	if len(fields) < 2 {
		return "", "", ""
	}
	tag, name = fields[0], strings.ToUpper(fields[1])
	if len(fields) == 3 {
		rest = fields[2]
	}
	if name == "UID" && rest != "" {
		sub, r, _ := strings.Cut(rest, " ")
		name, rest = "UID "+strings.ToUpper(sub), r
	}
	return tag, name, rest
}

var literalRE = regexp.MustCompile(`\{(\d+)\+?\}\r?\n$`)

// announcedLiteral parses a literal announcement at the end of line.
func announcedLiteral(line string) (int64, bool) {
	m := literalRE.FindStringSubmatch(line)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	return n, err == nil
}

// fromServer passes the server's replies to the client, rewritten,
// stalled or trickled by the faults.
func (pc *proxyConn) fromServer() {
	defer pc.close()
	if f, _ := pc.s.current(); f.StallGreeting && !pc.hold() {
		return
	}
	br := bufio.NewReaderSize(pc.backend, 64<<10)
	for greeting := true; ; greeting = false {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		f, _ := pc.s.current()
		n, lit := announcedLiteral(line)
		announce := n
		if lit && f.BodyLiteral != nil && bodySection(line) {
			announce = f.BodyLiteral(n)
			line = line[:strings.LastIndexByte(line, '{')] + "{" + strconv.FormatInt(announce, 10) + "}\r\n"
		}
		if !lit {
			line = rewrite(line, f)
		}
		if line != "" && pc.send([]byte(line)) != nil {
			return
		}
		if lit && pc.literal(br, n, announce) != nil {
			return
		}
		if greeting && f.LongLine > 0 {
			pc.longLine(f.LongLine)
			return
		}
	}
}

// literal passes a literal of n bytes on as one of announce bytes.
func (pc *proxyConn) literal(br *bufio.Reader, n, announce int64) error {
	buf := make([]byte, 32<<10)
	sent := int64(0)
	for sent < n {
		k, err := br.Read(buf[:min(int64(len(buf)), n-sent)])
		if err != nil {
			return err
		}
		if keep := min(int64(k), announce-sent); keep > 0 {
			if err := pc.send(buf[:keep]); err != nil {
				return err
			}
		}
		sent += int64(k)
	}
	filler := bytes.Repeat([]byte("filler filler filler filler\r\n"), 1<<10)
	for ; sent < announce; sent += int64(len(filler)) {
		if err := pc.send(filler[:min(int64(len(filler)), announce-sent)]); err != nil {
			return err
		}
	}
	return nil
}

// longLine sends a line of n bytes without its end, then holds.
func (pc *proxyConn) longLine(n int64) {
	chunk := bytes.Repeat([]byte("a"), 64<<10)
	if pc.send([]byte("* OK ")) != nil {
		return
	}
	for sent := int64(0); sent < n; sent += int64(len(chunk)) {
		if pc.send(chunk[:min(int64(len(chunk)), n-sent)]) != nil {
			return
		}
	}
	<-pc.done
}

var bodyRE = regexp.MustCompile(`(?i)(BODY|BINARY)\[[^\]]*\](<\d+>)? ~?\{\d+\}\r?\n$`)

func bodySection(line string) bool { return bodyRE.MatchString(line) }

var (
	uidNextRE     = regexp.MustCompile(`(?i)^\* OK \[UIDNEXT \d+\]`)
	uidValidityRE = regexp.MustCompile(`(?i)^\* OK \[UIDVALIDITY \d+\]`)
	statusNextRE  = regexp.MustCompile(`(?i) ?\bUIDNEXT \d+`)
	statusValRE   = regexp.MustCompile(`(?i) ?\bUIDVALIDITY \d+`)
)

// rewrite applies the faults to one line of the server (not one that
// announces a literal); "" drops the line.
func rewrite(line string, f Faults) string {
	if f.DropUIDNext && uidNextRE.MatchString(line) || f.DropUIDValidity && uidValidityRE.MatchString(line) {
		return ""
	}
	if strings.HasPrefix(strings.ToUpper(line), "* STATUS ") {
		if f.DropUIDNext {
			line = statusNextRE.ReplaceAllString(line, "")
		}
		if f.DropUIDValidity {
			line = statusValRE.ReplaceAllString(line, "")
		}
		line = strings.Replace(line, "( ", "(", 1)
	}
	if len(f.HideCaps) > 0 && strings.Contains(strings.ToUpper(line), "CAPABILITY") {
		words := strings.Split(strings.TrimRight(line, "\r\n"), " ")
		kept := words[:0]
		for _, w := range words {
			bare := strings.TrimRight(w, "]")
			hidden := false
			for _, c := range f.HideCaps {
				hidden = hidden || strings.EqualFold(bare, string(c))
			}
			switch {
			case !hidden:
				kept = append(kept, w)
			case bare != w && len(kept) > 0: // "UIDPLUS]" ends the code
				kept[len(kept)-1] += "]"
			}
		}
		line = strings.Join(kept, " ") + "\r\n"
	}
	return line
}
