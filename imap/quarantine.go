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
	if list, err := s.c.List("", folder, nil).Collect(); err == nil && len(list) == 0 {
		if err := s.c.Create(folder, nil).Wait(); err != nil {
			return fmt.Errorf("create quarantine folder %s: %w", folder, classify(err))
		}
	}
	uids := make([]uint32, 0, len(items))
	for _, it := range items {
		uids = append(uids, it.UID)
	}
	set := uidSet(uids)
	var err error
	if s.c.Caps().Has(goimap.CapMove) {
		_, err = s.c.Move(set, folder).Wait()
	} else if _, err = s.c.Copy(set, folder).Wait(); err == nil {
		err = s.remove(set)
	}
	if err != nil {
		return fmt.Errorf("move to quarantine %s: %w", folder, classify(err))
	}
	return nil
}
