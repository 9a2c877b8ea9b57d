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
