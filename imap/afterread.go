package imap

import (
	"context"
	"fmt"

	goimap "github.com/emersion/go-imap/v2"

	"github.com/mailpoller/mailpoller/source"
)

// AfterRead implements source.Source.
func (s *Source) AfterRead(ctx context.Context, items []source.Item) error {
	if s.opts.AfterRead == "none" || len(items) == 0 {
		return nil
	}
	defer s.guard(ctx)()
	uids := make([]uint32, 0, len(items))
	for _, it := range items {
		uids = append(uids, it.UID)
	}
	set := uidSet(uids)
	var err error
	switch s.opts.AfterRead {
	case "mark_read":
		err = s.store(set, goimap.FlagSeen)
	case "move":
		var to string
		if to, err = s.serverName(s.opts.MoveTo); err == nil {
			err = s.move(set, to)
		}
	case "delete":
		err = s.remove(set)
	default:
		return fmt.Errorf("unknown after_read %q", s.opts.AfterRead)
	}
	if err != nil {
		return fmt.Errorf("after_read %s: %w", s.opts.AfterRead, err)
	}
	return nil
}

// move moves set to folder: MOVE, or COPY and remove without it.
func (s *Source) move(set goimap.UIDSet, folder string) error {
	if s.caps().Has(goimap.CapMove) {
		return s.do("uid move", func() error { _, err := s.c.Move(set, folder).Wait(); return err })
	}
	if err := s.do("uid copy", func() error { _, err := s.c.Copy(set, folder).Wait(); return err }); err != nil {
		return err
	}
	return s.remove(set)
}

func (s *Source) store(set goimap.UIDSet, flag goimap.Flag) error {
	return s.do("uid store", func() error {
		return s.c.Store(set, &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Silent: true, Flags: []goimap.Flag{flag}}, nil).Close()
	})
}

// remove flags set \Deleted and expunges exactly set with UID EXPUNGE. A
// server without UIDPLUS has only the plain EXPUNGE, which would also
// destroy every message another client has flagged \Deleted: there the
// messages stay flagged and the server expunges them in its own time.
func (s *Source) remove(set goimap.UIDSet) error {
	if err := s.store(set, goimap.FlagDeleted); err != nil {
		return err
	}
	if s.caps().Has(goimap.CapUIDPlus) {
		return s.do("uid expunge", func() error { return s.c.UIDExpunge(set).Close() })
	}
	s.noUIDPlus.Do(func() {
		s.log.Info("server has no UIDPLUS: handled mail is flagged \\Deleted and left for the server to expunge, since a plain EXPUNGE would also remove what other clients flagged",
			"folder", s.opts.Folder)
	})
	return nil
}
