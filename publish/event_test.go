package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/mailpoller/mailpoller/message"
)

// TestEventContract publishes a message with no addresses, threading,
// headers or problems and one large attachment, reads the event back from
// the stream and checks the contract: subject and data.message_id are the
// same Message-ID without angle brackets, every list is [] (the schema
// requires arrays), and each blob's object-store info names its filename
// and content type, read back through nats.go's ObjectStore.
func TestEventContract(t *testing.T) {
	c := newConn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	raw := []byte("Message-ID: <x1@contoso.test>\r\nSubject: report\r\n\r\nsee attached\r\n")
	pdf := bytes.Repeat([]byte("%PDF"), InlineLimit/4+1)
	m := &message.Message{MessageID: "x1@contoso.test", Subject: "report", Size: int64(len(raw)),
		Attachments: []message.Attachment{{Filename: "Q3 résumé.pdf", ContentType: "application/pdf",
			Size: int64(len(pdf)), SHA256: sum(pdf), Content: pdf}}}
	o := Origin{Account: "support", Mailbox: "support@contoso.test", Folder: "INBOX", Protocol: "imap", ServerID: "1:1"}
	ev := NewEvent(o, m, time.Now())
	subject := Subject(c.Prefix(), o.Account, o.Mailbox)
	if _, err := c.Publish(ctx, subject, ev, raw); err != nil {
		t.Fatal(err)
	}
	payload := fetchOne(t, c, subject).Data()
	validateEvent(t, payload)

	var got map[string]any
	if err := json.Unmarshal(payload, &got); err != nil {
		t.Fatal(err)
	}
	data := got["data"].(map[string]any)
	if got["subject"] != "x1@contoso.test" || data["message_id"] != "x1@contoso.test" {
		t.Errorf("subject %q, data.message_id %q: want both x1@contoso.test", got["subject"], data["message_id"])
	}
	for _, k := range []string{"in_reply_to", "references", "from", "reply_to", "to", "cc", "headers", "problems"} {
		if l, ok := data[k].([]any); !ok || len(l) != 0 {
			t.Errorf("data.%s = %#v, want []", k, data[k])
		}
	}

	obs, err := c.JetStream().ObjectStore(ctx, BlobBucket)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct{ key, filename, contentType, disposition string }{
		{ev.Data.Attachments[0].Blob.Key, "Q3 résumé.pdf", "application/pdf", "attachment; filename*=utf-8''Q3%20r%C3%A9sum%C3%A9.pdf"},
		{ev.Data.Raw.Key, "message.eml", "message/rfc822", "attachment; filename=message.eml"},
	} {
		info, err := obs.GetInfo(ctx, want.key)
		if err != nil {
			t.Fatalf("GetInfo(%s): %v", want.key, err)
		}
		if info.Metadata[MetaFilename] != want.filename || info.Metadata[MetaContentType] != want.contentType {
			t.Errorf("blob %s metadata = %v, want filename %q content_type %q", want.key, info.Metadata, want.filename, want.contentType)
		}
		if ct, cd := info.Headers.Get("Content-Type"), info.Headers.Get("Content-Disposition"); ct != want.contentType || cd != want.disposition {
			t.Errorf("blob %s headers Content-Type %q Content-Disposition %q, want %q and %q", want.key, ct, cd, want.contentType, want.disposition)
		}
		r, err := obs.Get(ctx, want.key)
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
	}
}

// TestSchemaRefusesNullLists checks the schema is strict about the
// contract: a null list fails validation.
func TestSchemaRefusesNullLists(t *testing.T) {
	sch, err := jsonschema.NewCompiler().Compile("../configs/event.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	ev := NewEvent(Origin{Account: "a", Mailbox: "m@x", Folder: "INBOX", Protocol: "imap", ServerID: "1:1"},
		&message.Message{}, time.Now())
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	check := func(payload string) error {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		return sch.Validate(v)
	}
	if err := check(string(b)); err != nil {
		t.Fatalf("empty event refused: %v\n%s", err, b)
	}
	if bad := strings.Replace(string(b), `"to":[]`, `"to":null`, 1); bad == string(b) {
		t.Fatalf("no \"to\":[] in %s", b)
	} else if check(bad) == nil {
		t.Error("schema accepts \"to\": null")
	}
}
