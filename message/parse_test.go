package message

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func load(t testing.TB, name string) *Message {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("../testdata/corpus", name))
	if err != nil {
		t.Fatal(err)
	}
	return Parse(raw, nil)
}

// blob is the deterministic byte generator the corpus's attachments were
// made with (a linear congruential generator), so their sha256 can be
// checked independently of the parser.
func blob(seed uint32, n int) []byte {
	out := make([]byte, 0, n)
	x := seed
	for len(out) < n {
		x = (x*1103515245 + 12345) & 0x7fffffff
		out = append(out, byte(x))
	}
	return out
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func codes(m *Message) []string {
	var c []string
	for _, p := range m.Problems {
		if !slices.Contains(c, p.Code) {
			c = append(c, p.Code)
		}
	}
	slices.Sort(c)
	return c
}

// TestCorpus checks what a careful reader sees in each corpus message.
func TestCorpus(t *testing.T) {
	type att struct {
		name, ctype string
		size        int64
		inline      bool
	}
	for _, tc := range []struct {
		file          string
		subject, from string // from: "Name <addr>"
		text, html    string // substrings
		atts          []att
		auto          Auto
		problems      []string
		messageID     string
		noDate        bool
	}{
		{file: "01-plain-ascii.eml", subject: "Password reset request", from: "Alice Example <alice@example.net>", text: "please reset my password.\n-- \nAlice\n", messageID: "c01@example.net"},
		{file: "02-utf8-plain.eml", subject: "Grüße aus München", from: "Jörg Straße <joerg@example.de>", text: "„Fehler 42“ – bitte prüfen. 😀"},
		{file: "03-alternative.eml", subject: "Order 1234 shipped", from: "Shop <noreply@shop.example>", text: "Tracking: ZX12345.", html: "<b>shipped</b>"},
		{file: "04-html-only.eml", subject: "Newsletter November", html: "<p>Café news</p>", auto: Auto{Bulk: true}},
		{file: "05-pdf-attachment.eml", text: "invoice attached", atts: []att{{"invoice-2026-118.pdf", "application/pdf", 3000, false}}},
		{file: "06-three-attachments.eml", atts: []att{{"photo.png", "image/png", 2048, false}, {"logs.zip", "application/zip", 4096, false},
			{"report.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", 5000, false}}},
		{file: "07-related-inline-image.eml", text: "Regards, Alice", html: `cid:logo@example.net`, atts: []att{{"logo.png", "image/png", 512, true}}},
		{file: "08-subject-utf8-b.eml", subject: "Привет, мир!"},
		{file: "09-subject-utf8-q.eml", subject: "Café € price"},
		{file: "10-subject-iso-8859-1.eml", subject: "André möchte einen Termin", from: "André Müller <andre@example.de>", text: "Können wir uns treffen?"},
		{file: "11-subject-windows-1252.eml", subject: "“Quoted” – dash", text: "“smart quotes” and € sign"},
		{file: "12-iso-2022-jp.eml", subject: "お問い合わせ", from: "山田太郎 <yamada@example.jp>", text: "こんにちは、納品書を送ります。"},
		{file: "13-gb18030.eml", subject: "发票通知", text: "发票已开具"},
		{file: "14-koi8-r.eml", subject: "Счёт"},
		{file: "15-shift-jis-subject.eml", subject: "請求書"},
		{file: "16-windows-1251-body.eml", text: "Добрый день! Оплата получена."},
		{file: "17-iso-8859-15-body.eml", text: "Prix: 10 €"},
		{file: "18-rfc2231-filename.eml", atts: []att{{"Vertrag für Müller.pdf", "application/pdf", 600, false}}},
		{file: "19-forwarded-rfc822.eml", text: "Forwarding this.", atts: []att{{"Original question.eml", "message/rfc822", -1, false}}},
		{file: "21-outlook-exchange.eml", text: "Notes attached.", html: "<div>Notes attached.</div>", atts: []att{{"notes.xls", "application/vnd.ms-excel", 1024, false}}},
		{file: "22-dsn-bounce.eml", from: "Mail Delivery System <MAILER-DAEMON@mx.example.com>", text: "failed permanently", auto: Auto{AutoReply: true, Bounce: true},
			atts: []att{{"", "message/delivery-status", -1, false}, {"", "text/rfc822-headers", -1, false}}},
		{file: "23-out-of-office.eml", text: "out of the office", auto: Auto{AutoReply: true}},
		{file: "24-mailing-list.eml", auto: Auto{Bulk: true}},
		{file: "25-bulk-newsletter.eml", auto: Auto{Bulk: true}},
		{file: "26-signed.eml", text: "I confirm the order.", atts: []att{{"smime.p7s", "application/pkcs7-signature", 700, false}}},
		{file: "27-calendar-invite.eml", text: "Review on Friday", atts: []att{{"", "text/calendar", -1, false}}},
		{file: "28-missing-closing-boundary.eml", text: "first part", atts: []att{{"", "application/octet-stream", 15, false}}, problems: []string{ProblemTruncatedMIME}},
		{file: "29-bad-base64.eml", text: "text", atts: []att{{"broken.bin", "application/octet-stream", -1, false}}, problems: []string{ProblemBadEncoding}},
		{file: "30-unknown-charset.eml", text: "plain words", problems: []string{ProblemBadCharset}},
		{file: "31-broken-date.eml", noDate: true, problems: []string{ProblemBadDate}},
		{file: "32-broken-address-list.eml", problems: []string{ProblemBadAddress}},
		{file: "33-no-message-id.eml", messageID: "-", text: "body without id"},
		{file: "34-header-only.eml", subject: "Header only", problems: []string{ProblemNoBody}},
		{file: "35-raw-8bit-header.eml", subject: "Café au lait", from: "René <rene@example.fr>", text: "Très bien", problems: []string{ProblemBadCharset}},
		{file: "36-not-a-message.eml", text: "just a text file someone saved as .eml\nwith no headers", noDate: true, messageID: "-", problems: []string{ProblemNotMIME}},
		{file: "37-lf-only.eml", subject: "LF only line endings", text: "line one\nline two\n"},
		{file: "38-duplicate-headers.eml", subject: "First subject"},
		{file: "39-long-folded-header.eml", subject: "A very long subject line that keeps going and going well past seventy-eight characters and continues on a folded line and one more"},
		{file: "41-inline-text-attachment.eml", text: "see log", atts: []att{{"server.log", "text/plain", 16, true}}},
		{file: "42-nested-multipart.eml", text: "deep text", html: "<p>deep html</p>"},
		{file: "43-quoted-printable-soft-breaks.eml", text: "This line is soft-broken and has é accents."},
		{file: "44-x-autoreply.eml", auto: Auto{AutoReply: true}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			m := load(t, tc.file)
			if tc.subject != "" && m.Subject != tc.subject {
				t.Errorf("subject %q, want %q", m.Subject, tc.subject)
			}
			if tc.from != "" {
				if len(m.From) != 1 || m.From[0].Name+" <"+m.From[0].Address+">" != tc.from {
					t.Errorf("from %+v, want %s", m.From, tc.from)
				}
			}
			if !strings.Contains(m.Text, tc.text) || !strings.Contains(m.HTML, tc.html) {
				t.Errorf("text %q / html %q, want them to contain %q / %q", m.Text, m.HTML, tc.text, tc.html)
			}
			if len(m.Attachments) != len(tc.atts) {
				t.Fatalf("%d attachments, want %d: %+v", len(m.Attachments), len(tc.atts), m.Attachments)
			}
			for i, w := range tc.atts {
				a := m.Attachments[i]
				if a.Filename != w.name || a.ContentType != w.ctype || (w.size >= 0 && a.Size != w.size) || a.Inline != w.inline || a.SHA256 != sum(a.Content) {
					t.Errorf("attachment %d = %s %s %d inline=%v, want %+v", i, a.Filename, a.ContentType, a.Size, a.Inline, w)
				}
			}
			if m.Auto != tc.auto {
				t.Errorf("auto %+v, want %+v", m.Auto, tc.auto)
			}
			want := slices.Clone(tc.problems)
			slices.Sort(want)
			if got := codes(m); !slices.Equal(got, want) {
				t.Errorf("problems %v (%+v), want %v", got, m.Problems, want)
			}
			switch tc.messageID {
			case "":
			case "-":
				if m.MessageID != "" {
					t.Errorf("message id %q, want none", m.MessageID)
				}
			default:
				if m.MessageID != tc.messageID {
					t.Errorf("message id %q, want %q", m.MessageID, tc.messageID)
				}
			}
			if (m.Date == nil) != tc.noDate {
				t.Errorf("date %v, want missing=%v", m.Date, tc.noDate)
			}
		})
	}
}

func TestThreadingAndAddresses(t *testing.T) {
	m := load(t, "20-reply-threading.eml")
	if !slices.Equal(m.InReplyTo, []string{"t4411-2@contoso.test"}) || !slices.Equal(m.References, []string{"t4411-1@contoso.test", "t4411-2@contoso.test"}) {
		t.Errorf("in_reply_to %v references %v", m.InReplyTo, m.References)
	}
	m = load(t, "40-cc-replyto-sender.eml")
	if m.Sender == nil || m.Sender.Address != "assistant@example.net" || len(m.ReplyTo) != 1 || m.ReplyTo[0].Name != "Team" {
		t.Errorf("sender %+v reply_to %+v", m.Sender, m.ReplyTo)
	}
	if len(m.Cc) != 2 || m.Cc[0] != (Address{"Doe, Jane", "jane@example.net"}) || m.Cc[1].Address != "bob@example.org" {
		t.Errorf("cc %+v", m.Cc)
	}
	m = load(t, "32-broken-address-list.eml")
	var got []string
	for _, a := range m.To {
		got = append(got, a.Address)
	}
	if !slices.Contains(got, "support@contoso.test") || !slices.Contains(got, "bob@example.org") {
		t.Errorf("readable addresses of a broken list lost: %v", got)
	}
	m = load(t, "38-duplicate-headers.eml")
	n := 0
	for _, h := range m.Headers {
		if h.Name == "Subject" || h.Name == "Received" {
			n++
		}
	}
	if n != 4 {
		t.Errorf("repeated headers kept: %d of 4", n)
	}
}

// TestAttachmentHashes checks sha256 against the bytes the corpus was made from.
func TestAttachmentHashes(t *testing.T) {
	m := load(t, "05-pdf-attachment.eml")
	if m.Attachments[0].SHA256 != sum(blob(1, 3000)) {
		t.Errorf("pdf sha256 %s, want %s", m.Attachments[0].SHA256, sum(blob(1, 3000)))
	}
	m = load(t, "06-three-attachments.eml")
	for i, want := range [][]byte{blob(2, 2048), blob(3, 4096), blob(4, 5000)} {
		if m.Attachments[i].SHA256 != sum(want) || !bytes.Equal(m.Attachments[i].Content, want) {
			t.Errorf("attachment %d content differs from its source bytes", i)
		}
	}
}

func nested(depth int) []byte {
	var b bytes.Buffer
	b.WriteString("Subject: deep\r\nMIME-Version: 1.0\r\n")
	for i := 0; i < depth; i++ {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\nbottom\r\n")
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return b.Bytes()
}

func TestCaps(t *testing.T) {
	if m := Parse(nested(10000), nil); !slices.Contains(codes(m), ProblemTooDeep) {
		t.Errorf("10000-deep nesting: problems %v, want too_deep", codes(m))
	}
	var b bytes.Buffer
	b.WriteString("Subject: parts\r\nContent-Type: multipart/mixed; boundary=p\r\n\r\n")
	for i := 0; i < 5000; i++ {
		b.WriteString("--p\r\nContent-Type: text/plain\r\n\r\nx\r\n")
	}
	b.WriteString("--p--\r\n")
	if m := Parse(b.Bytes(), &Options{MaxParts: 100}); !slices.Contains(codes(m), ProblemTooManyParts) {
		t.Errorf("5000 parts: problems %v, want too_many_parts", codes(m))
	}
	big := []byte("Subject: big\r\nX-Filler: " + strings.Repeat("a", 2<<20) + "\r\n\r\nbody\r\n")
	m := Parse(big, nil)
	if !slices.Contains(codes(m), ProblemHeaderTooLarge) || m.Subject != "big" {
		t.Errorf("2 MiB header: problems %v subject %q", codes(m), m.Subject)
	}
}

var knownCodes = []string{ProblemBadCharset, ProblemBadEncoding, ProblemBadHeader, ProblemBadDate, ProblemBadAddress, ProblemTruncatedMIME,
	ProblemTooDeep, ProblemTooManyParts, ProblemHeaderTooLarge, ProblemNoBody, ProblemNotMIME, ProblemTooLarge}

func checkInvariants(t *testing.T, m *Message) {
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	if !utf8.Valid(b) {
		t.Fatal("JSON is not valid UTF-8")
	}
	for _, p := range m.Problems {
		if !slices.Contains(knownCodes, p.Code) {
			t.Fatalf("undocumented problem code %q", p.Code)
		}
	}
	for _, s := range []string{m.Subject, m.Text, m.HTML, m.MessageID} {
		if !utf8.ValidString(s) {
			t.Fatalf("invalid UTF-8 in %q", s)
		}
	}
}

func TestCorpusInvariants(t *testing.T) {
	files, _ := filepath.Glob("../testdata/corpus/*.eml")
	if len(files) < 40 {
		t.Fatalf("corpus has %d messages, want at least 40", len(files))
	}
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		checkInvariants(t, Parse(raw, nil))
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("../testdata/corpus/*.eml")
	for _, file := range files {
		raw, _ := os.ReadFile(file)
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkInvariants(t, Parse(raw, &Options{MaxDepth: 8, MaxParts: 50}))
	})
}

func BenchmarkParseCorpus(b *testing.B) {
	files, _ := filepath.Glob("../testdata/corpus/*.eml")
	var raws [][]byte
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		raws = append(raws, raw)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, raw := range raws {
			Parse(raw, nil)
		}
	}
}

func BenchmarkParse20MB(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString("Subject: big\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n")
	for i := 0; i < 5; i++ {
		fmt.Fprintf(&buf, "--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
		data := blob(uint32(i), 3<<20)
		enc := make([]byte, 0, 4<<20)
		enc = fmt.Appendf(enc, "%s", bytes.TrimSpace([]byte(strings.Join(chunk(base64Std(data), 76), "\r\n"))))
		buf.Write(enc)
		buf.WriteString("\r\n")
	}
	buf.WriteString("--B--\r\n")
	raw := buf.Bytes()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		Parse(raw, nil)
	}
}

var b64 = base64.StdEncoding

func base64Std(b []byte) string { return b64.EncodeToString(b) }

func chunk(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}
