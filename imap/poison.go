package imap

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
)

// poison remembers, across the connections of one Transport, the messages
// whose body the server announced as a literal too large to read at all
// (over maxBodyLiteral): such a literal ends the connection, so without a
// memory the same batch would fail on every reconnect and block the
// mailbox for ever. A batch that failed so is fetched message by message
// on the next connection; the one message that fails alone is handed over
// with Err and dead-lettered, and the mailbox moves on.
type poison struct {
	mu      sync.Mutex
	suspect map[string]bool // in a batch that failed
	bad     map[string]bool // failed alone
}

func poisonKey(mailbox, folder string, uidValidity, uid uint32) string {
	return mailbox + "\x00" + folder + "\x00" + strconv.FormatUint(uint64(uidValidity), 10) + "\x00" + strconv.FormatUint(uint64(uid), 10)
}

// isBodyLimit reports whether err is a body literal over the hard cap.
func isBodyLimit(err error) bool {
	var le *LimitError
	return errors.As(err, &le) && le.What == "body literal"
}

// failed records that fetching uids ended with a body literal over the cap.
func (p *poison) failed(s *Source, uids []uint32) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, u := range uids {
		k := poisonKey(s.opts.Address, s.opts.Folder, s.uidValidity, u)
		if len(uids) == 1 {
			p.bad[k] = true
		} else {
			p.suspect[k] = true
		}
	}
}

// state says whether uid is known bad, or suspect (fetch it alone).
func (p *poison) state(s *Source, uid uint32) (bad, suspect bool) {
	if p == nil {
		return false, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k := poisonKey(s.opts.Address, s.opts.Folder, s.uidValidity, uid)
	return p.bad[k], p.suspect[k]
}

func newPoison() *poison { return &poison{suspect: map[string]bool{}, bad: map[string]bool{}} }

// errImpossible is the Err of a message whose body the server announced
// as a literal too large to read, twice.
func errImpossible(uid uint32) error {
	return fmt.Errorf("the server announced UID %d's body as a literal over %d bytes on every try: it cannot be fetched", uid, int64(maxBodyLiteral))
}
