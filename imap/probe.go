package imap

import (
	"context"
	"errors"
	"fmt"

	goimap "github.com/emersion/go-imap/v2"

	"github.com/mailpoller/mailpoller/source"
)

// ProbeResult is what Probe learned about a mailbox.
type ProbeResult struct {
	Messages     uint32
	Unseen       int
	UIDValidity  uint32
	MoveToExists *bool // nil when no move_to folder was given
}

// Probe connects, authenticates and examines the folder read-only, counts
// its messages and unread ones, and checks that opts.MoveTo exists. It
// changes nothing on the server. It is what `mailpoller check` runs.
func Probe(ctx context.Context, opts Options) (*ProbeResult, error) {
	moveTo := opts.MoveTo
	opts.AfterRead, opts.MoveTo = "none", ""
	s, err := Open(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	defer s.guard(ctx)()
	res := &ProbeResult{UIDValidity: s.uidValidity, Messages: s.numMessages}
	var data *goimap.SearchData
	err = s.do("uid search", func() (err error) {
		data, err = s.c.UIDSearch(&goimap.SearchCriteria{NotFlag: []goimap.Flag{goimap.FlagSeen}}, nil).Wait()
		return err
	})
	if err != nil {
		return res, fmt.Errorf("count unread: %w", err)
	}
	res.Unseen = len(data.AllUIDs())
	if moveTo != "" {
		err := s.checkFolder(moveTo)
		ok := err == nil
		res.MoveToExists = &ok
		if err != nil && !errors.Is(err, source.ErrPermanent) {
			return res, err
		}
	}
	return res, nil
}
