package sim

import (
	"bytes"
	"context"
	"crypto/tls"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/mailpoller/mailpoller/ews"
)

// TestGraphSameBytesAsIMAPAndEWS delivers one message and reads it over
// IMAP, EWS and Graph's $value: the same bytes; a read over Graph shows
// as \Seen in IMAP.
func TestGraphSameBytesAsIMAPAndEWS(t *testing.T) {
	e := newGraphEnv(t)
	const box = "support@contoso.test"
	raw := []byte("From: <x@example.net>\r\nTo: <support@contoso.test>\r\nSubject: three ways\r\nMessage-ID: <three@example.net>\r\n\r\nSame bytes.\r\n")
	m, err := e.s.Store().Deliver(box, "INBOX", raw, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var viaGraph []byte
	if st, _ := e.do("GET", support+"/messages/"+m.ItemID+"/$value", nil, &viaGraph); st != 200 {
		t.Fatalf("$value: %d", st)
	}
	items, err := ewsClient(t, e.s, "22222222-2222-2222-2222-222222222222", "demo-secret").GetItemsMIME(context.Background(), box, []ews.ItemID{{ID: m.ItemID}})
	if err != nil || len(items) != 1 {
		t.Fatalf("EWS: %v", err)
	}
	if st, _ := e.do("PATCH", support+"/messages/"+m.ItemID, map[string]any{"isRead": true}, nil); st != 200 {
		t.Fatalf("patch: %d", st)
	}
	c, err := imapclient.DialTLS(e.s.Endpoints().IMAP, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: e.s.CAPool()}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tok := e.getToken("22222222-2222-2222-2222-222222222222", "demo-secret", "https://outlook.office365.com/.default")
	if err := c.Authenticate(xoauth2{box, tok}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(goimap.UIDSetNum(goimap.UID(m.UID)), &goimap.FetchOptions{UID: true, Flags: true, BodySection: []*goimap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("IMAP fetch: %v", err)
	}
	if !bytes.Equal(viaGraph, raw) || !bytes.Equal(items[0].MIME, raw) || !bytes.Equal(msgs[0].BodySection[0].Bytes, raw) {
		t.Fatalf("bytes differ:\nGraph %q\nEWS   %q\nIMAP  %q", viaGraph, items[0].MIME, msgs[0].BodySection[0].Bytes)
	}
	seen := false
	for _, f := range msgs[0].Flags {
		seen = seen || f == goimap.FlagSeen
	}
	if !seen {
		t.Fatalf("IMAP flags after Graph PATCH: %v", msgs[0].Flags)
	}
}
