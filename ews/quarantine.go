package ews

import (
	"context"
	"fmt"

	"github.com/mailpoller/mailpoller/source"
)

// Quarantine implements source.Quarantiner: it moves items to folder (a
// path or a name, see FindFolder), creating it if it is missing.
func (s *Source) Quarantine(ctx context.Context, items []source.Item, folder string) error {
	ids := make([]ItemID, 0, len(items))
	for _, it := range items {
		if it.ServerID != "" {
			ids = append(ids, ItemID{ID: it.ServerID})
		}
	}
	if len(ids) == 0 {
		return nil
	}
	to, err := s.c.EnsureFolder(ctx, s.opts.Address, folder)
	if err != nil {
		return fmt.Errorf("quarantine folder %s: %w", folder, err)
	}
	err = s.retryBusy(ctx, func() error {
		_, err := s.c.MoveItems(ctx, s.opts.Address, ids, to)
		return err
	})
	if err = dropNotFound(err); err != nil {
		return fmt.Errorf("move to quarantine %s: %w", folder, err)
	}
	return nil
}
