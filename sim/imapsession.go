package sim

import (
	"bytes"
	"fmt"
	"io"
	"net/mail"
	"slices"
	"strings"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// The IMAP commands of a session, over the shared Store: what a polling
// client uses (SELECT, LIST, STATUS, SEARCH, FETCH, STORE, COPY, MOVE,
// EXPUNGE, APPEND, IDLE) with Exchange's answers.

func (s *session) Select(name string, options *goimap.SelectOptions) (*goimap.SelectData, error) {
	if err := s.fault(); err != nil {
		return nil, err
	}
	st := s.srv.store
	st.mu.Lock()
	defer st.mu.Unlock()
	f, err := st.folderLocked(s.user, name)
	if err != nil {
		return nil, &goimap.Error{Type: goimap.StatusResponseTypeNo, Text: "Folder not found."}
	}
	s.selName = f.name
	s.view = s.view[:0]
	for _, m := range f.msgs {
		s.view = append(s.view, m.UID)
	}
	fi := f.infoLocked()
	return &goimap.SelectData{
		Flags:          []goimap.Flag{goimap.FlagSeen, goimap.FlagAnswered, goimap.FlagFlagged, goimap.FlagDeleted, goimap.FlagDraft},
		PermanentFlags: []goimap.Flag{goimap.FlagSeen, goimap.FlagAnswered, goimap.FlagFlagged, goimap.FlagDeleted, goimap.FlagDraft},
		NumMessages:    uint32(len(s.view)),
		UIDNext:        goimap.UID(fi.UIDNext),
		UIDValidity:    fi.UIDValidity,
	}, nil
}

func (s *session) Create(name string, options *goimap.CreateOptions) error {
	if err := s.srv.store.CreateFolder(s.user, name); err != nil {
		return &goimap.Error{Type: goimap.StatusResponseTypeNo, Text: err.Error()}
	}
	return nil
}

func (s *session) Delete(name string) error {
	return &goimap.Error{Type: goimap.StatusResponseTypeNo, Text: "DELETE is not supported by the simulator."}
}

func (s *session) Rename(name, newName string, options *goimap.RenameOptions) error {
	return &goimap.Error{Type: goimap.StatusResponseTypeNo, Text: "RENAME is not supported by the simulator."}
}

func (s *session) Subscribe(name string) error   { return nil }
func (s *session) Unsubscribe(name string) error { return nil }

func (s *session) Namespace() (*goimap.NamespaceData, error) {
	return &goimap.NamespaceData{Personal: []goimap.NamespaceDescriptor{{Prefix: "", Delim: '/'}}}, nil
}

func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *goimap.ListOptions) error {
	if len(patterns) == 1 && patterns[0] == "" {
		return w.WriteList(&goimap.ListData{Attrs: []goimap.MailboxAttr{goimap.MailboxAttrNoSelect}, Delim: '/'})
	}
	for _, name := range s.srv.store.Folders(s.user) {
		for _, p := range patterns {
			if matchPattern(ref+p, name) {
				attr := goimap.MailboxAttrHasNoChildren
				if s.srv.store.HasChildren(s.user, name) {
					attr = goimap.MailboxAttrHasChildren
				}
				if err := w.WriteList(&goimap.ListData{Delim: '/', Mailbox: name, Attrs: []goimap.MailboxAttr{attr}}); err != nil {
					return err
				}
				break
			}
		}
	}
	return nil
}

// matchPattern implements LIST wildcards: * matches anything, % anything
// but the delimiter; INBOX matches case-insensitively.
func matchPattern(pattern, name string) bool {
	if strings.EqualFold(pattern, "INBOX") {
		return strings.EqualFold(name, "INBOX")
	}
	if pattern == "" {
		return name == ""
	}
	switch pattern[0] {
	case '*', '%':
		for i := 0; i <= len(name); i++ {
			if pattern[0] == '%' && i > 0 && name[i-1] == '/' {
				break
			}
			if matchPattern(pattern[1:], name[i:]) {
				return true
			}
		}
		return false
	}
	if name == "" || !strings.EqualFold(pattern[:1], name[:1]) {
		return false
	}
	return matchPattern(pattern[1:], name[1:])
}

func (s *session) Status(name string, options *goimap.StatusOptions) (*goimap.StatusData, error) {
	fi, err := s.srv.store.Folder(s.user, name)
	if err != nil {
		return nil, &goimap.Error{Type: goimap.StatusResponseTypeNo, Text: "Folder not found."}
	}
	n, unseen := uint32(fi.Total), uint32(fi.Unread)
	return &goimap.StatusData{Mailbox: fi.Name, NumMessages: &n, NumUnseen: &unseen, UIDNext: goimap.UID(fi.UIDNext), UIDValidity: fi.UIDValidity}, nil
}

func (s *session) Append(name string, r goimap.LiteralReader, options *goimap.AppendOptions) (*goimap.AppendData, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var flags []string
	var t time.Time
	if options != nil {
		for _, f := range options.Flags {
			flags = append(flags, string(f))
		}
		t = options.Time
	}
	m, err := s.srv.store.Deliver(s.user, name, raw, t, flags...)
	if err != nil {
		return nil, &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeTryCreate, Text: "Folder not found."}
	}
	fi, _ := s.srv.store.Folder(s.user, name)
	return &goimap.AppendData{UID: goimap.UID(m.UID), UIDValidity: fi.UIDValidity}, nil
}

// sync reports expunged and new messages to the client.
func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	if err := s.expiredErr(); err != nil {
		return err
	}
	if s.selName == "" {
		return nil
	}
	st := s.srv.store
	st.mu.Lock()
	f, err := st.folderLocked(s.user, s.selName)
	if err != nil {
		st.mu.Unlock()
		return nil
	}
	present := map[uint32]bool{}
	var newUIDs []uint32
	last := uint32(0)
	if len(s.view) > 0 {
		last = s.view[len(s.view)-1]
	}
	for _, m := range f.msgs {
		present[m.UID] = true
		if m.UID > last {
			newUIDs = append(newUIDs, m.UID)
		}
	}
	st.mu.Unlock()
	if allowExpunge {
		for i := len(s.view) - 1; i >= 0; i-- {
			if !present[s.view[i]] {
				if err := w.WriteExpunge(uint32(i + 1)); err != nil {
					return err
				}
				s.view = slices.Delete(s.view, i, i+1)
			}
		}
	}
	if len(newUIDs) > 0 {
		s.view = append(s.view, newUIDs...)
		return w.WriteNumMessages(uint32(len(s.view)))
	}
	return nil
}

func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	ch, cancel, err := s.srv.store.watch(s.user, s.selName)
	if err != nil {
		<-stop
		return nil
	}
	defer cancel()
	s.mu.Lock()
	s.idling = true
	expired := s.expired
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.idling = false
		s.mu.Unlock()
	}()
	if expired {
		s.expire()
		return nil
	}
	for {
		if err := s.Poll(w, true); err != nil {
			return err
		}
		select {
		case <-ch:
		case <-stop:
			return nil
		}
	}
}

func (s *session) Unselect() error {
	s.selName, s.view = "", nil
	return nil
}

// resolve returns the messages numSet names, with their sequence numbers.
// Called with the store lock held.
func (s *session) resolve(f *folder, numSet goimap.NumSet) ([]uint32, []*Message) {
	byUID := map[uint32]*Message{}
	for _, m := range f.msgs {
		byUID[m.UID] = m
	}
	var seqs []uint32
	var msgs []*Message
	maxUID := uint32(0)
	if n := len(s.view); n > 0 {
		maxUID = s.view[n-1]
	}
	for i, uid := range s.view {
		seq := uint32(i + 1)
		var in bool
		switch set := numSet.(type) {
		case goimap.UIDSet:
			in = inUIDSet(set, uid, maxUID)
		case goimap.SeqSet:
			in = inSeqSet(set, seq, uint32(len(s.view)))
		}
		if m, ok := byUID[uid]; in && ok {
			seqs = append(seqs, seq)
			msgs = append(msgs, m)
		}
	}
	return seqs, msgs
}

func inUIDSet(set goimap.UIDSet, uid, max uint32) bool {
	return slices.ContainsFunc(set, func(r goimap.UIDRange) bool { return inRange(uint32(r.Start), uint32(r.Stop), uid, max) })
}

func inSeqSet(set goimap.SeqSet, seq, max uint32) bool {
	return slices.ContainsFunc(set, func(r goimap.SeqRange) bool { return inRange(r.Start, r.Stop, seq, max) })
}

// inRange reports whether n is in lo:hi, where 0 stands for "*" (max).
func inRange(lo, hi, n, max uint32) bool {
	if lo == 0 {
		lo = max
	}
	if hi == 0 {
		hi = max
	}
	if lo > hi {
		lo, hi = hi, lo
	}
	return n >= lo && n <= hi
}

func (s *session) selected() (*folder, error) {
	f, err := s.srv.store.folderLocked(s.user, s.selName)
	if err != nil {
		return nil, &goimap.Error{Type: goimap.StatusResponseTypeNo, Text: "Folder is gone."}
	}
	return f, nil
}

// lockSelected injects the session's fault, if any, then takes the store's
// lock and returns the selected folder. On error the lock is not held.
func (s *session) lockSelected() (*folder, error) {
	if err := s.fault(); err != nil {
		return nil, err
	}
	s.srv.store.mu.Lock()
	f, err := s.selected()
	if err != nil {
		s.srv.store.mu.Unlock()
		return nil, err
	}
	return f, nil
}

func (s *session) Expunge(w *imapserver.ExpungeWriter, uids *goimap.UIDSet) error {
	f, err := s.lockSelected()
	if err != nil {
		return err
	}
	st := s.srv.store
	gone := map[uint32]bool{}
	kept := f.msgs[:0]
	for _, m := range f.msgs {
		if m.hasFlag(`\Deleted`) && (uids == nil || inUIDSet(*uids, m.UID, f.uidNext-1)) {
			gone[m.UID] = true
			st.actionLocked(s.user, s.selName, m.UID, "deleted")
			continue
		}
		kept = append(kept, m)
	}
	f.msgs = kept
	st.mu.Unlock()
	for i := len(s.view) - 1; i >= 0; i-- {
		if gone[s.view[i]] {
			if err := w.WriteExpunge(uint32(i + 1)); err != nil {
				return err
			}
			s.view = slices.Delete(s.view, i, i+1)
		}
	}
	return nil
}

func (m *Message) hasFlag(flag string) bool {
	return slices.ContainsFunc(m.Flags, func(f string) bool { return strings.EqualFold(f, flag) })
}

func (s *session) Search(kind imapserver.NumKind, criteria *goimap.SearchCriteria, options *goimap.SearchOptions) (*goimap.SearchData, error) {
	if err := s.fault(); err != nil {
		return nil, err
	}
	st := s.srv.store
	st.mu.Lock()
	defer st.mu.Unlock()
	f, err := s.selected()
	if err != nil {
		return nil, err
	}
	var all goimap.SeqSet
	var allUID goimap.UIDSet
	seqs, msgs := s.resolve(f, goimap.SeqSet{goimap.SeqRange{Start: 1, Stop: 0}})
	for i, m := range msgs {
		if s.match(m, seqs[i], criteria) {
			all.AddNum(seqs[i])
			allUID.AddNum(goimap.UID(m.UID))
		}
	}
	if kind == imapserver.NumKindUID {
		return &goimap.SearchData{All: allUID}, nil
	}
	return &goimap.SearchData{All: all}, nil
}

func (s *session) match(m *Message, seq uint32, c *goimap.SearchCriteria) bool {
	max := uint32(len(s.view))
	for _, set := range c.SeqNum {
		if !inSeqSet(set, seq, max) {
			return false
		}
	}
	maxUID := uint32(0)
	if len(s.view) > 0 {
		maxUID = s.view[len(s.view)-1]
	}
	for _, set := range c.UID {
		if !inUIDSet(set, m.UID, maxUID) {
			return false
		}
	}
	for _, f := range c.Flag {
		if !m.hasFlag(string(f)) {
			return false
		}
	}
	for _, f := range c.NotFlag {
		if m.hasFlag(string(f)) {
			return false
		}
	}
	day := m.Received.Truncate(24 * time.Hour)
	if !c.Since.IsZero() && day.Before(c.Since.Truncate(24*time.Hour)) {
		return false
	}
	if !c.Before.IsZero() && !day.Before(c.Before.Truncate(24*time.Hour)) {
		return false
	}
	if c.Larger > 0 && int64(len(m.Raw)) <= c.Larger {
		return false
	}
	if c.Smaller > 0 && int64(len(m.Raw)) >= c.Smaller {
		return false
	}
	header, _, _ := bytes.Cut(m.Raw, []byte("\r\n\r\n"))
	for _, h := range c.Header {
		msg, err := mail.ReadMessage(bytes.NewReader(append(slices.Clone(header), "\r\n\r\n"...)))
		if err != nil || !strings.Contains(strings.ToLower(msg.Header.Get(h.Key)), strings.ToLower(h.Value)) {
			return false
		}
	}
	for _, t := range append(slices.Clone(c.Body), c.Text...) {
		if !bytes.Contains(bytes.ToLower(m.Raw), bytes.ToLower([]byte(t))) {
			return false
		}
	}
	for _, n := range c.Not {
		if s.match(m, seq, &n) {
			return false
		}
	}
	for _, or := range c.Or {
		if !s.match(m, seq, &or[0]) && !s.match(m, seq, &or[1]) {
			return false
		}
	}
	return true
}

func flagList(m *Message) []goimap.Flag {
	out := make([]goimap.Flag, 0, len(m.Flags))
	for _, f := range m.Flags {
		out = append(out, goimap.Flag(f))
	}
	return out
}

// section returns the bytes of a BODY[...] section (top level only: the
// whole message, HEADER, TEXT, HEADER.FIELDS).
func section(raw []byte, sec *goimap.FetchItemBodySection) []byte {
	header, body, found := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !found {
		header, body = raw, nil
	}
	var b []byte
	switch sec.Specifier {
	case goimap.PartSpecifierNone:
		b = raw
	case goimap.PartSpecifierHeader:
		b = append(slices.Clone(header), "\r\n\r\n"...)
		if len(sec.HeaderFields) > 0 || len(sec.HeaderFieldsNot) > 0 {
			b = filterHeader(header, sec.HeaderFields, sec.HeaderFieldsNot)
		}
	case goimap.PartSpecifierText:
		b = body
	}
	if p := sec.Partial; p != nil {
		if p.Offset >= int64(len(b)) {
			return nil
		}
		b = b[p.Offset:min(int64(len(b)), p.Offset+p.Size)]
	}
	return b
}

func filterHeader(header []byte, only, not []string) []byte {
	var out bytes.Buffer
	var keep bool
	for _, line := range strings.SplitAfter(string(header)+"\r\n", "\r\n") {
		if line == "" {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			name, _, _ := strings.Cut(line, ":")
			name = strings.TrimSpace(name)
			in := func(list []string) bool {
				return slices.ContainsFunc(list, func(s string) bool { return strings.EqualFold(s, name) })
			}
			keep = (len(only) == 0 || in(only)) && !in(not)
		}
		if keep {
			out.WriteString(line)
		}
	}
	out.WriteString("\r\n")
	return out.Bytes()
}

func (s *session) Fetch(w *imapserver.FetchWriter, numSet goimap.NumSet, options *goimap.FetchOptions) error {
	f, err := s.lockSelected()
	if err != nil {
		return err
	}
	st := s.srv.store
	seqs, msgs := s.resolve(f, numSet)
	if len(options.BodySection) > 0 {
		for _, m := range msgs {
			if s.srv.refused(s.user, m.UID) {
				st.mu.Unlock()
				return &goimap.Error{Type: goimap.StatusResponseTypeNo, Text: "The requested message could not be converted to an RFC-822 compatible format."}
			}
		}
	}
	type item struct {
		seq   uint32
		m     Message
		flags []goimap.Flag
	}
	items := make([]item, len(msgs))
	for i, m := range msgs {
		for _, sec := range options.BodySection {
			if !sec.Peek && !m.Seen() {
				setFlag(m, `\Seen`, true)
				st.actionLocked(s.user, s.selName, m.UID, "seen")
			}
		}
		items[i] = item{seq: seqs[i], m: *m, flags: flagList(m)}
	}
	st.mu.Unlock()
	drop := s.srv.takeDropFetch(s.user)
	for _, it := range items {
		rw := w.CreateMessage(it.seq)
		rw.WriteUID(goimap.UID(it.m.UID))
		if options.Flags {
			rw.WriteFlags(it.flags)
		}
		if options.RFC822Size {
			rw.WriteRFC822Size(int64(len(it.m.Raw)))
		}
		if options.InternalDate {
			rw.WriteInternalDate(it.m.Received)
		}
		if options.Envelope {
			rw.WriteEnvelope(envelope(it.m.Raw))
		}
		for _, sec := range options.BodySection {
			b := section(it.m.Raw, sec)
			wc := rw.WriteBodySection(sec, int64(len(b)))
			if drop {
				wc.Write(b[:len(b)/2])
				s.conn.NetConn().Close()
				return fmt.Errorf("simulated connection drop mid-FETCH")
			}
			if _, err := wc.Write(b); err != nil {
				return err
			}
			if err := wc.Close(); err != nil {
				return err
			}
		}
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}

func envelope(raw []byte) *goimap.Envelope {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return &goimap.Envelope{}
	}
	env := &goimap.Envelope{Subject: msg.Header.Get("Subject"), MessageID: strings.Trim(msg.Header.Get("Message-Id"), "<>")}
	env.Date, _ = msg.Header.Date()
	return env
}

func (s *session) Store(w *imapserver.FetchWriter, numSet goimap.NumSet, flags *goimap.StoreFlags, options *goimap.StoreOptions) error {
	f, err := s.lockSelected()
	if err != nil {
		return err
	}
	st := s.srv.store
	seqs, msgs := s.resolve(f, numSet)
	type res struct {
		seq   uint32
		uid   uint32
		flags []goimap.Flag
	}
	var out []res
	for i, m := range msgs {
		wasSeen := m.Seen()
		switch flags.Op {
		case goimap.StoreFlagsSet:
			m.Flags = nil
			fallthrough
		case goimap.StoreFlagsAdd:
			for _, fl := range flags.Flags {
				setFlag(m, string(fl), true)
			}
		case goimap.StoreFlagsDel:
			for _, fl := range flags.Flags {
				setFlag(m, string(fl), false)
			}
		}
		if !wasSeen && m.Seen() {
			st.actionLocked(s.user, s.selName, m.UID, "seen")
		}
		out = append(out, res{seqs[i], m.UID, flagList(m)})
	}
	st.mu.Unlock()
	if flags.Silent {
		return nil
	}
	for _, r := range out {
		rw := w.CreateMessage(r.seq)
		rw.WriteUID(goimap.UID(r.uid))
		rw.WriteFlags(r.flags)
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}

// copyLocked copies the messages of numSet to dest, keeping flags.
func (s *session) copyLocked(numSet goimap.NumSet, dest string) (*goimap.CopyData, []uint32, []*Message, error) {
	f, err := s.selected()
	if err != nil {
		return nil, nil, nil, err
	}
	to, err := s.srv.store.folderLocked(s.user, dest)
	if err != nil {
		return nil, nil, nil, &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeTryCreate, Text: "Folder not found."}
	}
	seqs, msgs := s.resolve(f, numSet)
	data := &goimap.CopyData{UIDValidity: to.uidValidity}
	for _, m := range msgs {
		c := to.appendLocked(m.Raw, m.Received, m.Flags)
		data.SourceUIDs.AddNum(goimap.UID(m.UID))
		data.DestUIDs.AddNum(goimap.UID(c.UID))
	}
	return data, seqs, msgs, nil
}

func (s *session) Copy(numSet goimap.NumSet, dest string) (*goimap.CopyData, error) {
	if err := s.fault(); err != nil {
		return nil, err
	}
	st := s.srv.store
	st.mu.Lock()
	defer st.mu.Unlock()
	data, _, _, err := s.copyLocked(numSet, dest)
	return data, err
}

func (s *session) Move(w *imapserver.MoveWriter, numSet goimap.NumSet, dest string) error {
	if err := s.fault(); err != nil {
		return err
	}
	st := s.srv.store
	st.mu.Lock()
	data, seqs, msgs, err := s.copyLocked(numSet, dest)
	if err == nil {
		f, _ := s.selected()
		for _, m := range msgs {
			st.actionLocked(s.user, s.selName, m.UID, "moved")
		}
		f.msgs = slices.DeleteFunc(f.msgs, func(m *Message) bool { return slices.Contains(msgs, m) })
	}
	st.mu.Unlock()
	if err != nil {
		return err
	}
	if err := w.WriteCopyData(data); err != nil {
		return err
	}
	for i := len(seqs) - 1; i >= 0; i-- {
		if err := w.WriteExpunge(seqs[i]); err != nil {
			return err
		}
		s.view = slices.Delete(s.view, int(seqs[i]-1), int(seqs[i]))
	}
	return nil
}
