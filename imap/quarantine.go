package imap

import (
	"context"
	"fmt"

	goimap "github.com/emersion/go-imap/v2"

	"github.com/mailpoller/mailpoller/source"
)

// Quarantine implements source.Quarantiner: it moves items to folder,
// creating the folder if it is missing.
func (s *Source) Quarantine(ctx context.Context, items []source.Item, folder string) error {
	if len(items) == 0 {
		return nil
	}
	defer s.guard(ctx)()
	folder, err := s.serverName(folder)
	if err != nil {
		return err
	}
	var list []*goimap.ListData
	err = s.do("list", func() (err error) { list, err = s.c.List("", folder, nil).Collect(); return err })
	if err == nil && len(list) == 0 {
		if err := s.do("create", func() error { return s.c.Create(folder, nil).Wait() }); err != nil {
			return fmt.Errorf("create quarantine folder %s: %w", folder, err)
		}
	}
	uids := make([]uint32, 0, len(items))
	for _, it := range items {
		uids = append(uids, it.UID)
	}
	if err := s.move(uidSet(uids), folder); err != nil {
		return fmt.Errorf("move to quarantine %s: %w", folder, err)
	}
	return nil
}
