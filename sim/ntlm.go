package sim

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"golang.org/x/crypto/md4"
)

// The server side of NTLM (MS-NLMP) as IIS runs it for Exchange's EWS
// virtual directory with Windows authentication: a NEGOTIATE message
// gets a CHALLENGE with a random server challenge, and the AUTHENTICATE
// message's NTLMv2 response is checked against the seeded user's
// password. The login holds for the connection (IIS authenticates
// connections, not requests), so the three legs must come on one
// connection and later requests on it need no Authorization header. It
// only verifies what a client sends; it signs and seals nothing.

// ntlmSignature starts every NTLM message.
var ntlmSignature = []byte("NTLMSSP\x00")

// Challenge flags: Unicode, target requested, NTLM, always sign, domain
// target, extended session security, target info.
const ntlmChallengeFlags = 1<<0 | 1<<2 | 1<<9 | 1<<15 | 1<<16 | 1<<19 | 1<<23

// ntlmConns remembers, per connection (remote address), the challenge
// sent on it and the user it authenticated as.
type ntlmConns struct {
	mu    sync.Mutex
	conns map[string]*ntlmConn
}

type ntlmConn struct {
	challenge []byte // the last CHALLENGE's server challenge, nil once used
	user      *User  // authenticated on this connection, or nil
	at        time.Time
}

// get returns the state of conn, made on first use. Connections not seen
// for an hour are forgotten (the simulator does not see them close).
func (n *ntlmConns) get(conn string) *ntlmConn {
	if n.conns == nil {
		n.conns = map[string]*ntlmConn{}
	}
	now := time.Now()
	c := n.conns[conn]
	if c == nil {
		for k, old := range n.conns {
			if now.Sub(old.at) > time.Hour {
				delete(n.conns, k)
			}
		}
		c = &ntlmConn{}
		n.conns[conn] = c
	}
	c.at = now
	return c
}

// user is who conn authenticated as, or nil.
func (n *ntlmConns) user(conn string) *User {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c := n.conns[conn]; c != nil {
		return c.user
	}
	return nil
}

// step takes one NTLM message (base64, from the Authorization header) on
// conn. It returns the CHALLENGE to send (base64) for a NEGOTIATE, or the
// user an AUTHENTICATE proves, or an error when the message is malformed
// or its response does not match a seeded user's password.
func (n *ntlmConns) step(d *directory, conn, msg string) (challenge string, u *User, err error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(msg))
	if err != nil || len(raw) < 12 || !bytes.Equal(raw[:8], ntlmSignature) {
		return "", nil, errors.New("not an NTLM message")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.get(conn)
	switch binary.LittleEndian.Uint32(raw[8:12]) {
	case 1:
		c.challenge = make([]byte, 8)
		rand.Read(c.challenge)
		c.user = nil
		return base64.StdEncoding.EncodeToString(challengeMessage(c.challenge)), nil, nil
	case 3:
		sc := c.challenge
		c.challenge = nil // one AUTHENTICATE per CHALLENGE
		if sc == nil {
			return "", nil, errors.New("AUTHENTICATE without a CHALLENGE on this connection")
		}
		u, err := verifyAuthenticate(d, raw, sc)
		c.user = u
		return "", u, err
	}
	return "", nil, errors.New("unexpected NTLM message type")
}

// challengeMessage is a CHALLENGE message with the simulator's target
// info (NetBIOS domain and computer, timestamp).
func challengeMessage(serverChallenge []byte) []byte {
	target := utf16le("SIM")
	var info bytes.Buffer
	av := func(id uint16, v []byte) {
		binary.Write(&info, binary.LittleEndian, id)
		binary.Write(&info, binary.LittleEndian, uint16(len(v)))
		info.Write(v)
	}
	av(2, target)              // MsvAvNbDomainName
	av(1, utf16le("EXCHANGE")) // MsvAvNbComputerName
	ts := make([]byte, 8)
	binary.LittleEndian.PutUint64(ts, uint64(time.Now().UnixNano()/100)+116444736000000000)
	av(7, ts) // MsvAvTimestamp
	av(0, nil)

	const head = 48
	var b bytes.Buffer
	b.Write(ntlmSignature)
	binary.Write(&b, binary.LittleEndian, uint32(2))
	field := func(n, off int) {
		binary.Write(&b, binary.LittleEndian, uint16(n))
		binary.Write(&b, binary.LittleEndian, uint16(n))
		binary.Write(&b, binary.LittleEndian, uint32(off))
	}
	field(len(target), head)
	binary.Write(&b, binary.LittleEndian, uint32(ntlmChallengeFlags))
	b.Write(serverChallenge)
	b.Write(make([]byte, 8))
	field(info.Len(), head+len(target))
	b.Write(target)
	b.Write(info.Bytes())
	return b.Bytes()
}

// verifyAuthenticate checks an AUTHENTICATE message's NTLMv2 response to
// serverChallenge: NTProofStr = HMAC-MD5(NTOWFv2, challenge || blob) with
// NTOWFv2 = HMAC-MD5(MD4(UTF-16LE(password)), UTF-16LE(UPPER(user) + domain)).
func verifyAuthenticate(d *directory, raw, serverChallenge []byte) (*User, error) {
	field := func(at int) ([]byte, error) {
		if len(raw) < at+8 {
			return nil, errors.New("short AUTHENTICATE message")
		}
		n, off := int(binary.LittleEndian.Uint16(raw[at:])), int(binary.LittleEndian.Uint32(raw[at+4:]))
		if off < 0 || off+n > len(raw) {
			return nil, errors.New("AUTHENTICATE field out of bounds")
		}
		return raw[off : off+n], nil
	}
	nt, err := field(20)
	if err != nil {
		return nil, err
	}
	dom, err := field(28)
	if err != nil {
		return nil, err
	}
	usr, err := field(36)
	if err != nil {
		return nil, err
	}
	if len(nt) < 16+28 {
		return nil, errors.New("no NTLMv2 response (NTLMv1 is refused)")
	}
	domain, name := fromUTF16le(dom), fromUTF16le(usr)
	login := name
	if domain != "" {
		login = domain + `\` + name
	}
	u := d.user(login)
	if u == nil || u.Password == "" {
		return nil, errors.New("unknown user")
	}
	h := md4.New()
	h.Write(utf16le(u.Password))
	ntowf := hmacMD5(h.Sum(nil), utf16le(strings.ToUpper(name)+domain))
	if !hmac.Equal(hmacMD5(ntowf, serverChallenge, nt[16:]), nt[:16]) {
		return nil, errors.New("wrong password")
	}
	return u, nil
}

func hmacMD5(key []byte, data ...[]byte) []byte {
	m := hmac.New(md5.New, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(nil)
}

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, r := range u {
		binary.LittleEndian.PutUint16(b[2*i:], r)
	}
	return b
}

func fromUTF16le(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}
