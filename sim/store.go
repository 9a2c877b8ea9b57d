package sim

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Errors of the store.
var (
	errNoMailbox = errors.New("no such mailbox")
	errNoFolder  = errors.New("no such folder")
	errExists    = errors.New("folder exists")
	errBadName   = errors.New("invalid folder name")
)

// Store holds the simulator's mailboxes. Both protocol sides (IMAP, and
// EWS when mounted) read and change the same messages. It is safe for
// concurrent use.
type Store struct {
	mu      sync.Mutex
	boxes   map[string]*mailbox
	uidBase uint32
	hook    func(address, folder string, uid uint32, action string)
}

// OnAction registers f, called with the store locked whenever a client
// marks a message \Seen ("seen"), moves it ("moved") or expunges it
// ("deleted"). Tests use it to check that nothing is acted on before its
// event exists.
func (s *Store) OnAction(f func(address, folder string, uid uint32, action string)) {
	s.mu.Lock()
	s.hook = f
	s.mu.Unlock()
}

func (s *Store) actionLocked(address, folder string, uid uint32, action string) {
	if f, err := s.folderLocked(address, folder); err == nil {
		for _, m := range f.msgs {
			if m.UID == uid {
				kind := "delete"
				if action == "seen" {
					kind = "read"
				}
				f.changes = append(f.changes, change{seq: uint64(len(f.changes) + 1), uid: uid, itemID: m.ItemID, immutableID: m.immutableID, kind: kind})
				break
			}
		}
	}
	if s.hook != nil {
		s.hook(address, folder, uid, action)
	}
}

type mailbox struct {
	address string
	folders map[string]*folder // key: folderKey(name)
}

type folder struct {
	name        string
	id          string // EWS FolderId
	uidValidity uint32
	uidNext     uint32
	msgs        []*Message // by UID ascending
	watchers    map[chan struct{}]struct{}
	changes     []change // read and delete changes, for EWS SyncFolderItems
}

// change is one entry of a folder's change log.
type change struct {
	seq         uint64
	uid         uint32
	itemID      string
	immutableID string // the message's Graph ImmutableId
	kind        string // "read" or "delete"
}

// Message is one stored mail.
type Message struct {
	UID      uint32
	ItemID   string
	Raw      []byte
	Flags    []string // IMAP flags such as \Seen, \Deleted
	Received time.Time

	immutableID string // Graph's ImmutableId: kept across Graph moves
	modSeq      uint64 // modClock when its flags last changed (Graph delta "updated")
}

// modClock orders flag changes across the store, for Graph's delta query.
var modClock atomic.Uint64

// GraphID is the message's id over Graph (an ImmutableId): the server_id
// of its Graph event.
func (m *Message) GraphID() string { return m.immutableID }

// Seen reports whether the \Seen flag is set.
func (m *Message) Seen() bool { return slices.Contains(m.Flags, `\Seen`) }

// newStore returns an empty store.
func newStore() *Store {
	return &Store{boxes: map[string]*mailbox{}, uidBase: uint32(time.Now().Unix() & 0x7fffffff)}
}

func folderKey(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return strings.ToLower(name)
}

func newID() string {
	b := make([]byte, 24)
	rand.Read(b)
	return "AAMk" + base64.RawURLEncoding.EncodeToString(b)
}

// AddMailbox creates a mailbox with an INBOX (no-op if it exists).
func (s *Store) AddMailbox(address string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := strings.ToLower(address)
	if _, ok := s.boxes[a]; ok {
		return
	}
	mb := &mailbox{address: a, folders: map[string]*folder{}}
	s.boxes[a] = mb
	s.newFolderLocked(mb, "INBOX")
}

func (s *Store) newFolderLocked(mb *mailbox, name string) *folder {
	s.uidBase++
	f := &folder{name: name, id: newID(), uidValidity: s.uidBase, uidNext: 1, watchers: map[chan struct{}]struct{}{}}
	mb.folders[folderKey(name)] = f
	return f
}

// HasMailbox reports whether address is a mailbox of the store.
func (s *Store) HasMailbox(address string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.boxes[strings.ToLower(address)]
	return ok
}

func (s *Store) folderLocked(address, name string) (*folder, error) {
	mb, ok := s.boxes[strings.ToLower(address)]
	if !ok {
		return nil, fmt.Errorf("%w: %s", errNoMailbox, address)
	}
	f, ok := mb.folders[folderKey(name)]
	if !ok {
		return nil, fmt.Errorf("%w: %s in %s", errNoFolder, name, address)
	}
	return f, nil
}

// CreateFolder adds a folder to a mailbox.
func (s *Store) CreateFolder(address, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb, ok := s.boxes[strings.ToLower(address)]
	if !ok {
		return fmt.Errorf("%w: %s", errNoMailbox, address)
	}
	if _, ok := mb.folders[folderKey(name)]; ok {
		return fmt.Errorf("%w: %s", errExists, name)
	}
	s.newFolderLocked(mb, name)
	return nil
}

// Folders lists a mailbox's folder names, sorted.
func (s *Store) Folders(address string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb, ok := s.boxes[strings.ToLower(address)]
	if !ok {
		return nil
	}
	var names []string
	for _, f := range mb.folders {
		names = append(names, f.name)
	}
	slices.Sort(names)
	return names
}

// Deliver appends a message to a folder and wakes IDLE sessions on it.
func (s *Store) Deliver(address, folderName string, raw []byte, received time.Time, flags ...string) (*Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.folderLocked(address, folderName)
	if err != nil {
		return nil, err
	}
	return f.appendLocked(raw, received, flags), nil
}

func (f *folder) appendLocked(raw []byte, received time.Time, flags []string) *Message {
	if received.IsZero() {
		received = time.Now()
	}
	m := &Message{UID: f.uidNext, ItemID: newID(), immutableID: "AAkA" + newID()[4:], Raw: slices.Clone(raw), Flags: slices.Clone(flags), Received: received.UTC().Truncate(time.Second)}
	f.uidNext++
	f.msgs = append(f.msgs, m)
	f.notifyLocked()
	return m
}

func (f *folder) notifyLocked() {
	for ch := range f.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Messages returns copies of a folder's messages in UID order.
func (s *Store) Messages(address, folderName string) ([]Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.folderLocked(address, folderName)
	if err != nil {
		return nil, err
	}
	out := make([]Message, len(f.msgs))
	for i, m := range f.msgs {
		out[i] = *m
		out[i].Flags = slices.Clone(m.Flags)
	}
	return out, nil
}

// FolderInfo is a folder's UIDVALIDITY, next UID and EWS id.
type FolderInfo struct {
	Name        string
	ID          string
	UIDValidity uint32
	UIDNext     uint32
	Total       int
	Unread      int
}

// Folder describes a folder.
func (s *Store) Folder(address, name string) (FolderInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.folderLocked(address, name)
	if err != nil {
		return FolderInfo{}, err
	}
	return f.infoLocked(), nil
}

func (f *folder) infoLocked() FolderInfo {
	fi := FolderInfo{Name: f.name, ID: f.id, UIDValidity: f.uidValidity, UIDNext: f.uidNext, Total: len(f.msgs)}
	for _, m := range f.msgs {
		if !m.Seen() {
			fi.Unread++
		}
	}
	return fi
}

// watch registers a channel signalled on every delivery to the folder.
func (s *Store) watch(address, name string) (chan struct{}, func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.folderLocked(address, name)
	if err != nil {
		return nil, nil, err
	}
	ch := make(chan struct{}, 1)
	f.watchers[ch] = struct{}{}
	return ch, func() {
		s.mu.Lock()
		delete(f.watchers, ch)
		s.mu.Unlock()
	}, nil
}

func setFlag(m *Message, flag string, on bool) {
	i := slices.IndexFunc(m.Flags, func(f string) bool { return strings.EqualFold(f, flag) })
	switch {
	case on && i < 0:
		m.Flags = append(m.Flags, flag)
		m.modSeq = modClock.Add(1)
	case !on && i >= 0:
		m.Flags = slices.Delete(m.Flags, i, i+1)
		m.modSeq = modClock.Add(1)
	}
}

// The folder tree. Store folder names are paths with "/" separators
// ("INBOX/Processed"); the EWS and Graph views show them as a hierarchy
// below the message folder root (msgfolderroot), as Exchange does. A
// folder's parent is the longest proper prefix of its path that is itself
// a folder of the mailbox, or the message folder root (nil) when none is.
// These helpers are called with the store lock held.

// parentLocked returns f's parent folder, nil for the message folder root.
func (mb *mailbox) parentLocked(f *folder) *folder {
	for i := strings.LastIndex(f.name, "/"); i > 0; i = strings.LastIndex(f.name[:i], "/") {
		if p := mb.folders[folderKey(f.name[:i])]; p != nil && p != f {
			return p
		}
	}
	return nil
}

// childrenLocked returns the direct child folders of parent (nil: the
// message folder root), sorted by name.
func (mb *mailbox) childrenLocked(parent *folder) []*folder {
	var out []*folder
	for _, f := range mb.folders {
		if mb.parentLocked(f) == parent {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b *folder) int { return strings.Compare(strings.ToLower(a.name), strings.ToLower(b.name)) })
	return out
}

// descendantsLocked returns every folder below parent (nil: the message
// folder root), depth first: each folder followed by its subtree.
func (mb *mailbox) descendantsLocked(parent *folder) []*folder {
	var out []*folder
	for _, f := range mb.childrenLocked(parent) {
		out = append(out, f)
		out = append(out, mb.descendantsLocked(f)...)
	}
	return out
}

// displayNameLocked is the folder's name as Exchange shows it: the part of
// its path below its parent ("Processed" for "INBOX/Processed"), and
// "Inbox" for INBOX.
func (mb *mailbox) displayNameLocked(f *folder) string {
	if f.name == "INBOX" {
		return "Inbox"
	}
	if p := mb.parentLocked(f); p != nil {
		return f.name[len(p.name)+1:]
	}
	return f.name
}

// wellKnownFolders maps the well-known folder names of EWS
// (DistinguishedFolderId) and Graph to store folder names.
var wellKnownFolders = map[string]string{
	"inbox": "INBOX", "deleteditems": "Deleted Items", "archive": "Archive",
	"junkemail": "Junk Email", "sentitems": "Sent Items", "drafts": "Drafts",
}

// wellKnownLocked returns the well-known folder (a key of
// wellKnownFolders), creating it on first use as Exchange has them all; nil
// for a name that is not well known.
func (s *Store) wellKnownLocked(mb *mailbox, name string) *folder {
	n, ok := wellKnownFolders[strings.ToLower(name)]
	if !ok {
		return nil
	}
	if f := mb.folders[folderKey(n)]; f != nil {
		return f
	}
	return s.newFolderLocked(mb, n)
}

// createChildLocked creates the folder displayName below parent (nil: the
// message folder root); its store name is the parent's path, "/" and
// displayName. errExists when parent already has a child of that name
// (compared case-insensitively, as Exchange does); errBadName for an empty
// name or one with a "/".
func (s *Store) createChildLocked(mb *mailbox, parent *folder, displayName string) (*folder, error) {
	if strings.TrimSpace(displayName) == "" || strings.Contains(displayName, "/") {
		// The store keeps the tree in "/"-separated paths, so a "/" in a
		// name (which Exchange allows) cannot be stored.
		return nil, fmt.Errorf("%w: %q (empty, or with a \"/\", which the simulator's store cannot hold)", errBadName, displayName)
	}
	name := displayName
	if parent != nil {
		name = parent.name + "/" + displayName
	}
	if _, ok := mb.folders[folderKey(name)]; ok {
		return nil, fmt.Errorf("%w: %s", errExists, name)
	}
	for _, c := range mb.childrenLocked(parent) {
		if strings.EqualFold(mb.displayNameLocked(c), displayName) {
			return nil, fmt.Errorf("%w: %s", errExists, c.name)
		}
	}
	return s.newFolderLocked(mb, name), nil
}

// HasChildren reports whether the folder name of address has subfolders.
func (s *Store) HasChildren(address, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb, ok := s.boxes[strings.ToLower(address)]
	if !ok {
		return false
	}
	f := mb.folders[folderKey(name)]
	return f != nil && len(mb.childrenLocked(f)) > 0
}
