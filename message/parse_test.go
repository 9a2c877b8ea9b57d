package message

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
)

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

func parseCRLF(s string) *Message { return Parse(crlf(s), nil) }

// TestCharsets decodes bodies and encoded-word subjects in the charsets
// real mail uses, in each transfer encoding.
func TestCharsets(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    encoding.Encoding
		text string
	}{
		{"windows-1252", charmap.Windows1252, "“Grüße” – 5 €"},
		{"ISO-8859-1", charmap.ISO8859_1, "Grüße aus Köln"},
		{"ISO-8859-15", charmap.ISO8859_15, "Œuvre à 10 €"},
		{"ISO-8859-2", charmap.ISO8859_2, "Zażółć gęślą jaźń"},
		{"windows-1251", charmap.Windows1251, "Счёт-фактура"},
		{"KOI8-R", charmap.KOI8R, "Добрый день"},
		{"ISO-2022-JP", japanese.ISO2022JP, "お問い合わせ"},
		{"Shift_JIS", japanese.ShiftJIS, "請求書"},
		{"EUC-JP", japanese.EUCJP, "納品書"},
		{"GB18030", simplifiedchinese.GB18030, "发票通知"},
		{"GBK", simplifiedchinese.GBK, "合同"},
		{"Big5", traditionalchinese.Big5, "發票"},
		{"EUC-KR", korean.EUCKR, "안녕하세요"},
		{"UTF-8", nil, "Привет 😀"},
	} {
		encoded := tc.text
		if tc.e != nil {
			encoded = enc(tc.e, tc.text)
		}
		for _, cte := range []string{"base64", "quoted-printable", "8bit"} {
			t.Run(tc.name+"/"+cte, func(t *testing.T) {
				body := encoded
				switch cte {
				case "base64":
					body = b64([]byte(encoded))
				case "quoted-printable":
					body = qp(encoded)
				}
				m := parseCRLF("From: a@example.net\nSubject: " + word(tc.name, tc.e, tc.text) + "\nContent-Type: text/plain; charset=\"" + tc.name +
					"\"\nContent-Transfer-Encoding: " + cte + "\n\n" + body + "\n")
				if m.Text != tc.text+"\n" || m.Subject != tc.text || len(m.Problems) != 0 {
					t.Errorf("text %q subject %q problems %+v, want %q", m.Text, m.Subject, m.Problems, tc.text)
				}
			})
		}
	}
}

func TestCharsetLabels(t *testing.T) {
	for _, label := range []string{"latin1", "iso_8859-1", "cp1252", "WINDOWS-1252", "x-unknown"} {
		m := parseCRLF("From: a@example.net\nContent-Type: text/plain; charset=" + label + "\nContent-Transfer-Encoding: quoted-printable\n\nCaf=E9\n")
		want, problems := "Café\n", []string(nil)
		if label == "x-unknown" {
			want, problems = "Caf\uFFFD\n", []string{ProblemBadCharset}
		}
		if m.Text != want || !slices.Equal(codes(m), problems) {
			t.Errorf("charset %s: text %q problems %v, want %q %v", label, m.Text, codes(m), want, problems)
		}
	}
}

func TestUndeclaredEightBitBody(t *testing.T) {
	m := parseCRLF("From: a@example.net\nSubject: x\n\nCaf\xe9 cr\xe8me\n")
	if m.Text != "Café crème\n" || !slices.Equal(codes(m), []string{ProblemBadCharset}) {
		t.Errorf("text %q problems %v", m.Text, codes(m))
	}
	m = parseCRLF("From: a@example.net\nSubject: x\n\nCafé crème\n") // raw UTF-8 is fine
	if m.Text != "Café crème\n" || len(m.Problems) != 0 {
		t.Errorf("text %q problems %v", m.Text, m.Problems)
	}
}

func TestAutoFlags(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   Auto
	}{
		{"Auto-Submitted: auto-replied", Auto{AutoReply: true}},
		{"Auto-Submitted: auto-generated", Auto{AutoReply: true}},
		{"Auto-Submitted: no", Auto{}},
		{"Auto-Submitted: No", Auto{}},
		{"X-Autoreply: yes", Auto{AutoReply: true}},
		{"X-Autorespond: vacation", Auto{AutoReply: true}},
		{"X-Auto-Response-Suppress: All", Auto{AutoReply: true}},
		{"Precedence: auto_reply", Auto{AutoReply: true}},
		{"Precedence: bulk", Auto{Bulk: true}},
		{"Precedence: list", Auto{Bulk: true}},
		{"Precedence: junk", Auto{Bulk: true}},
		{"Precedence: first-class", Auto{}},
		{"List-Id: <dev.lists.example.org>", Auto{Bulk: true}},
		{"List-Unsubscribe: <mailto:u@example.org>", Auto{Bulk: true}},
		{"Return-Path: <>\nFrom: MAILER-DAEMON@mx.example.org", Auto{Bounce: true}},
		{"Return-Path: <>\nFrom: postmaster@example.org", Auto{Bounce: true}},
		{"Return-Path: <>\nFrom: alice@example.org", Auto{}},
		{"Return-Path: <bounces@example.org>\nFrom: MAILER-DAEMON@mx.example.org", Auto{}},
		{"Content-Type: multipart/report; report-type=delivery-status; boundary=r", Auto{Bounce: true}},
		{"Content-Type: multipart/report; report-type=disposition-notification; boundary=r", Auto{}},
		{"X-Mailer: Outlook", Auto{}},
	} {
		raw := tc.header + "\nSubject: t\n\n--r\nContent-Type: text/plain\n\nbody\n--r--\n"
		if !strings.Contains(tc.header, "From:") {
			raw = "From: a@example.net\n" + raw
		}
		if m := parseCRLF(raw); m.Auto != tc.want {
			t.Errorf("%q: auto %+v, want %+v", tc.header, m.Auto, tc.want)
		}
	}
	m := parseCRLF("From: a@example.net\nContent-Type: multipart/mixed; boundary=r\n\n--r\nContent-Type: text/plain\n\nx\n" +
		"--r\nContent-Type: message/delivery-status\n\nAction: failed\n--r--\n")
	if !m.Auto.Bounce {
		t.Error("a message/delivery-status part does not mark a bounce")
	}
}

// TestProblemCodes triggers each problem code the parser sets with the
// smallest message that shows it, and checks where it is reported.
func TestProblemCodes(t *testing.T) {
	const h = "From: a@example.net\nSubject: s\nDate: Mon, 16 Nov 2026 10:00:00 +0100\n"
	for _, tc := range []struct {
		name, raw string
		code      string
		part      string
	}{
		{"unknown charset", h + "Content-Type: text/plain; charset=x-klingon\n\nbody\n", ProblemBadCharset, "1"},
		{"bytes invalid in utf-8", h + "Content-Type: text/plain; charset=utf-8\n\nbad \xff\xfe\n", ProblemBadCharset, "1"},
		{"unknown encoding", h + "Content-Transfer-Encoding: x-rot13\n\nbody\n", ProblemBadEncoding, "1"},
		{"broken base64", h + "Content-Type: application/pdf\nContent-Transfer-Encoding: base64\n\nJVBE*&^%\n", ProblemBadEncoding, "1"},
		{"broken content type", h + "Content-Type: text/plain; charset=\"utf-8\"; =broken\n\nbody\n", ProblemBadHeader, "1"},
		{"encoded word in an unknown charset", "From: a@example.net\nSubject: =?x-klingon?Q?abc?=\n\nbody\n", ProblemBadHeader, ""},
		{"header line without colon", "From: a@example.net\nthis is not a header\n\nbody\n", ProblemBadHeader, ""},
		{"bad date", "From: a@example.net\nDate: 31.12.2026\n\nbody\n", ProblemBadDate, ""},
		{"bad address", "From: a@example.net\nTo: <<<>>>\n\nbody\n", ProblemBadAddress, ""},
		{"truncated multipart", h + "Content-Type: multipart/mixed; boundary=z\n\n--z\nContent-Type: text/plain\n\nhalf", ProblemTruncatedMIME, "1"},
		{"no parts at all", h + "Content-Type: multipart/mixed; boundary=z\n\njust a preamble\n", ProblemTruncatedMIME, ""},
		{"too deep", strings.ReplaceAll(string(nested(40)), "\r\n", "\n"), ProblemTooDeep, strings.TrimSuffix(strings.Repeat("1.", 33), ".")},
		{"no body", h, ProblemNoBody, ""},
		{"not mime", "hello world\n", ProblemNotMIME, ""},
		{"empty input", "", ProblemNotMIME, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := parseCRLF(tc.raw)
			checkInvariants(t, m)
			if !slices.ContainsFunc(m.Problems, func(p Problem) bool { return p.Code == tc.code && p.Part == tc.part }) {
				t.Errorf("problems %+v, want %s at part %q", m.Problems, tc.code, tc.part)
			}
		})
	}
}

func TestMalformedHeaderLine(t *testing.T) {
	m := parseCRLF("From: Alice <alice@example.net>\nthis line is not a header\nSubject: still read\n\nbody\n")
	if m.Subject != "still read" || len(m.From) != 1 || m.Text != "body\n" || !slices.Equal(codes(m), []string{ProblemBadHeader}) {
		t.Errorf("subject %q from %+v text %q problems %v", m.Subject, m.From, m.Text, codes(m))
	}
}

func TestProblemsDeduplicated(t *testing.T) {
	// The raw 8-bit From is read by the header list, the address parser
	// and the bounce check: one problem.
	m := parseCRLF("From: Ren\xe9 <rene@example.fr>\nSubject: s\n\nbody\n")
	if len(m.Problems) != 1 || m.Problems[0].Code != ProblemBadCharset {
		t.Errorf("problems %+v, want one bad_charset", m.Problems)
	}
	// A truncated last part is one problem, not one for the part and one for its multipart.
	m = parseCRLF("From: a@example.net\nContent-Type: multipart/mixed; boundary=z\n\n--z\nContent-Type: text/plain\n\nhalf")
	if len(m.Problems) != 1 {
		t.Errorf("problems %+v, want one truncated_mime", m.Problems)
	}
	// Problems are capped.
	var b strings.Builder
	b.WriteString("From: a@example.net\nContent-Type: multipart/mixed; boundary=z\n\n")
	for range 500 {
		b.WriteString("--z\nContent-Type: text/plain; charset=x-unknown\n\nx\n")
	}
	b.WriteString("--z--\n")
	if m := parseCRLF(b.String()); len(m.Problems) != 100 {
		t.Errorf("%d problems, want the cap of 100", len(m.Problems))
	}
}

func TestBodiesAndAttachments(t *testing.T) {
	const h = "From: a@example.net\nSubject: s\nContent-Type: multipart/mixed; boundary=z\n\n"
	t.Run("text parts of an alternative are bodies, not attachments", func(t *testing.T) {
		m := parseCRLF(h + "--z\nContent-Type: multipart/alternative; boundary=y\n\n--y\nContent-Type: text/plain\n\nplain\n" +
			"--y\nContent-Type: text/html\n\n<b>html</b>\n--y--\n--z--\n")
		if m.Text != "plain\n" || m.HTML != "<b>html</b>" || len(m.Attachments) != 0 {
			t.Errorf("text %q html %q attachments %+v", m.Text, m.HTML, m.Attachments)
		}
	})
	t.Run("text with attachment disposition is an attachment", func(t *testing.T) {
		m := parseCRLF(h + "--z\nContent-Type: text/plain\n\nbody\n--z\nContent-Type: text/html\nContent-Disposition: attachment\n\n<p>page</p>\n--z--\n")
		if m.Text != "body\n" || m.HTML != "" || len(m.Attachments) != 1 || m.Attachments[0].ContentType != "text/html" {
			t.Errorf("text %q html %q attachments %+v", m.Text, m.HTML, m.Attachments)
		}
	})
	t.Run("inline text with a filename is an attachment", func(t *testing.T) {
		m := parseCRLF(h + "--z\nContent-Type: text/plain\n\nbody\n--z\nContent-Type: text/plain\nContent-Disposition: inline; filename=a.txt\n\nfile\n--z--\n")
		if m.Text != "body\n" || len(m.Attachments) != 1 || !m.Attachments[0].Inline || m.Attachments[0].Filename != "a.txt" {
			t.Errorf("text %q attachments %+v", m.Text, m.Attachments)
		}
	})
	t.Run("bodies are CRLF-normalised, attachments keep their bytes", func(t *testing.T) {
		m := parseCRLF(h + "--z\nContent-Type: text/plain\n\nline 1\nline 2\n--z\nContent-Type: text/plain; name=a.txt\n\nline 1\nline 2\n--z--\n")
		if m.Text != "line 1\nline 2\n" || string(m.Attachments[0].Content) != "line 1\r\nline 2" {
			t.Errorf("text %q attachment %q", m.Text, m.Attachments[0].Content)
		}
	})
	t.Run("attached message without subject", func(t *testing.T) {
		m := parseCRLF(h + "--z\nContent-Type: message/rfc822\n\nFrom: b@example.net\n\nhi\n--z--\n")
		if len(m.Attachments) != 1 || m.Attachments[0].Filename != "message.eml" {
			t.Errorf("attachments %+v", m.Attachments)
		}
	})
	t.Run("RFC 2231 value without charset and mixed segments", func(t *testing.T) {
		m := parseCRLF(h + "--z\nContent-Type: application/pdf\nContent-Disposition: attachment; filename*1=\"two.pdf\"; filename*0=\"one-\"\n\nx\n--z--\n")
		if len(m.Attachments) != 1 || m.Attachments[0].Filename != "one-two.pdf" {
			t.Errorf("attachments %+v", m.Attachments)
		}
	})
}

// TestNestedAttachedMessages: message/rfc822 inside message/rfc822 many
// times over is named from its header alone, not parsed recursively.
func TestNestedAttachedMessages(t *testing.T) {
	inner := "From: a@example.net\r\nSubject: innermost\r\n\r\nhi\r\n"
	for i := range 2000 {
		inner = fmt.Sprintf("From: a@example.net\r\nSubject: level %d\r\nContent-Type: message/rfc822\r\n\r\n%s", i, inner)
	}
	m := Parse([]byte(inner), nil)
	if len(m.Attachments) != 1 || m.Attachments[0].Filename != "level 1998.eml" {
		t.Errorf("attachments %+v", m.Attachments)
	}
}

func nested(depth int) []byte {
	var b bytes.Buffer
	b.WriteString("Subject: deep\r\nMIME-Version: 1.0\r\n")
	for i := range depth {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\nbottom\r\n")
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return b.Bytes()
}

func TestCaps(t *testing.T) {
	t.Run("10000-deep nesting", func(t *testing.T) {
		m := Parse(nested(10000), nil)
		if !slices.Contains(codes(m), ProblemTooDeep) || m.Subject != "deep" {
			t.Errorf("problems %v subject %q, want too_deep", codes(m), m.Subject)
		}
	})
	t.Run("100k parts", func(t *testing.T) {
		var b bytes.Buffer
		b.WriteString("Subject: parts\r\nContent-Type: multipart/mixed; boundary=p\r\n\r\n")
		for range 100_000 {
			b.WriteString("--p\r\nContent-Type: application/octet-stream\r\n\r\nx\r\n")
		}
		b.WriteString("--p--\r\n")
		m := Parse(b.Bytes(), nil)
		if !slices.Contains(codes(m), ProblemTooManyParts) || len(m.Attachments) != DefaultMaxParts-1 {
			t.Errorf("problems %v, %d attachments; want too_many_parts and %d", codes(m), len(m.Attachments), DefaultMaxParts-1)
		}
	})
	t.Run("10 MB header", func(t *testing.T) {
		big := []byte("Subject: big\r\nFrom: a@example.net\r\nX-Filler: " + strings.Repeat("a", 10<<20) + "\r\nX-After: 1\r\n\r\nbody\r\n")
		m := Parse(big, nil)
		if !slices.Contains(codes(m), ProblemHeaderTooLarge) || m.Subject != "big" || m.Text != "body\n" {
			t.Errorf("problems %v subject %q text %q", codes(m), m.Subject, m.Text)
		}
		for _, h := range m.Headers {
			if len(h.Value) > DefaultMaxHeaderBytes {
				t.Errorf("header %s kept %d bytes", h.Name, len(h.Value))
			}
		}
	})
	t.Run("options lower the limits", func(t *testing.T) {
		m := Parse(nested(5), &Options{MaxDepth: 2})
		if !slices.Contains(codes(m), ProblemTooDeep) {
			t.Errorf("problems %v", codes(m))
		}
		m = Parse([]byte("Subject: s\r\nX-A: "+strings.Repeat("a", 300)+"\r\n\r\nbody\r\n"), &Options{MaxHeaderBytes: 100})
		if !slices.Contains(codes(m), ProblemHeaderTooLarge) || m.Subject != "s" {
			t.Errorf("problems %v subject %q", codes(m), m.Subject)
		}
	})
}

// bigMessage is a message of about total bytes whose attachments are the
// given sizes, base64 in 76-character lines.
func bigMessage(sizes ...int) []byte {
	var buf bytes.Buffer
	buf.WriteString("From: a@example.net\r\nSubject: big\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n")
	for i, n := range sizes {
		fmt.Fprintf(&buf, "--B\r\nContent-Type: application/octet-stream; name=f%d.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n", i)
		enc := base64.StdEncoding.EncodeToString(blob(uint32(i), n))
		for len(enc) > 76 {
			buf.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		buf.WriteString(enc + "\r\n")
	}
	buf.WriteString("--B--\r\n")
	return buf.Bytes()
}

// TestMegabyteAttachment parses a message with a 1 MiB attachment (base64
// in 76-character lines) beside a text body.
func TestMegabyteAttachment(t *testing.T) {
	raw := bigMessage(1 << 20)
	m := Parse(raw, nil)
	checkInvariants(t, m)
	if m.Text != "hi\n" || len(m.Problems) != 0 || len(m.Attachments) != 1 {
		t.Fatalf("text %q problems %+v attachments %d", m.Text, m.Problems, len(m.Attachments))
	}
	a := m.Attachments[0]
	if a.Filename != "f0.bin" || a.ContentType != "application/octet-stream" || a.Size != 1<<20 ||
		a.SHA256 != sum(blob(0, 1<<20)) || !bytes.Equal(a.Content, blob(0, 1<<20)) {
		t.Errorf("attachment %q %s size %d sha256 %s", a.Filename, a.ContentType, a.Size, a.SHA256)
	}
	if m.Size != int64(len(raw)) {
		t.Errorf("size %d, want %d", m.Size, len(raw))
	}
}

func TestTextPartsJoined(t *testing.T) {
	m := parseCRLF("From: a@example.net\nContent-Type: multipart/mixed; boundary=z\n\n--z\nContent-Type: text/plain\n\nfirst\n\n\n" +
		"--z\nContent-Type: text/plain\n\n\n--z\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nsecond caf=E9\n--z--\n")
	if m.Text != "first\nsecond café\n" || len(m.Problems) != 0 {
		t.Errorf("text %q problems %+v", m.Text, m.Problems)
	}
}
