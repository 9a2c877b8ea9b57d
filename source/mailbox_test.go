package source_test

import (
	"errors"
	"testing"

	"github.com/mailpoller/mailpoller/source"
)

func TestMailboxDefaultsAndValidate(t *testing.T) {
	m := source.Mailbox{Address: "a@contoso.test"}.WithDefaults()
	if m.Folder != "INBOX" || m.StartFrom != source.StartUnread || m.AfterRead != source.MarkRead || m.PollInterval != source.DefaultPollInterval {
		t.Errorf("WithDefaults() = %+v", m)
	}
	if err := m.Validate(); err != nil {
		t.Errorf("Validate() of the defaults = %v", err)
	}
	for _, bad := range []source.Mailbox{
		{Address: "nobody"},
		{Address: "a@contoso.test", StartFrom: "yesterday", AfterRead: source.MarkRead},
		{Address: "a@contoso.test", StartFrom: source.StartAll, AfterRead: "archive"},
		{Address: "a@contoso.test", StartFrom: source.StartAll, AfterRead: source.Move},
		{Address: "a@contoso.test", StartFrom: source.StartAll, AfterRead: source.None, MaxMessageBytes: -1},
	} {
		if err := bad.Validate(); err == nil || !errors.Is(err, source.ErrPermanent) {
			t.Errorf("Validate(%+v) = %v, want a permanent error", bad, err)
		}
	}
}

func TestStoreRaw(t *testing.T) {
	if m := (source.Mailbox{Address: "a@contoso.test"}).WithDefaults(); m.StoreRaw != source.RawAlways {
		t.Errorf("WithDefaults().StoreRaw = %q, want always", m.StoreRaw)
	}
	for _, c := range []struct {
		s        source.StoreRaw
		problems int
		want     bool
	}{
		{source.RawAlways, 0, true}, {source.RawAlways, 2, true},
		{source.RawOnProblems, 0, false}, {source.RawOnProblems, 1, true},
		{source.RawNever, 0, false}, {source.RawNever, 1, false},
		{"", 0, true},
	} {
		if got := c.s.Keep(c.problems); got != c.want {
			t.Errorf("StoreRaw(%q).Keep(%d) = %v, want %v", c.s, c.problems, got, c.want)
		}
	}
	bad := source.Mailbox{Address: "a@contoso.test", StartFrom: source.StartAll, AfterRead: source.None, StoreRaw: "sometimes"}
	if err := bad.Validate(); err == nil || !errors.Is(err, source.ErrPermanent) {
		t.Errorf("Validate(store_raw sometimes) = %v, want a permanent error", err)
	}
}
