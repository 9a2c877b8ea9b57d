package message

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"mime/quotedprintable"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
)

// The corpus in testdata/corpus is written by TestWriteCorpus from the
// specs below: each spec is the message as a mail client would send it
// (LF line endings here, CRLF on disk) and the Message a careful reader
// expects from it. The expectations are written by hand, never taken from
// the parser; only Headers (from the spec's header block plus the decoded
// values in dec), Size and the attachments' sha256 are computed, from the
// bytes the spec encodes.
//
//	go test ./message -run TestWriteCorpus -write-corpus   # rewrite .eml and .json from the specs
//	go test ./message -run TestCorpus -update             # rewrite .json from the parser (intentional changes only)
var writeCorpus = flag.Bool("write-corpus", false, "rewrite testdata/corpus from the specs in corpus_gen_test.go")

const corpusDir = "../testdata/corpus"

// corpusMail is one message of the corpus and what it should parse to.
type corpusMail struct {
	name string
	raw  string            // LF line endings; written with CRLF unless lf
	lf   bool              // keep LF-only line endings
	dec  map[string]string // decoded value of a header, where it differs from the raw text
	want Message           // Headers and Size are filled in from raw
}

// blob is the deterministic byte generator for attachment contents (a
// linear congruential generator), so every sha256 can be recomputed.
func blob(seed uint32, n int) []byte {
	out := make([]byte, 0, n)
	x := seed
	for len(out) < n {
		x = (x*1103515245 + 12345) & 0x7fffffff
		out = append(out, byte(x>>16))
	}
	return out
}

// file prefixes a blob with a format's magic bytes.
func file(magic string, seed uint32, n int) []byte {
	return append([]byte(magic), blob(seed, n-len(magic))...)
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// b64 is base64 in 76-character lines, as mail clients write it.
func b64(b []byte) string {
	s := base64.StdEncoding.EncodeToString(b)
	var out strings.Builder
	for len(s) > 76 {
		out.WriteString(s[:76] + "\n")
		s = s[76:]
	}
	out.WriteString(s)
	return out.String()
}

func qp(s string) string {
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return strings.ReplaceAll(b.String(), "\r\n", "\n")
}

func enc(e encoding.Encoding, s string) string {
	out, err := e.NewEncoder().String(s)
	if err != nil {
		panic(err)
	}
	return out
}

// word is an RFC 2047 B encoded word of s in charset cs.
func word(cs string, e encoding.Encoding, s string) string {
	if e != nil {
		s = enc(e, s)
	}
	return "=?" + cs + "?B?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?="
}

func att(name, ctype string, content []byte, inline bool, cid string) Attachment {
	return Attachment{Filename: name, ContentType: ctype, Size: int64(len(content)), SHA256: sum(content), Inline: inline, ContentID: cid}
}

func date(s string) *time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return &t
}

func addr(name, address string) []Address { return []Address{{Name: name, Address: address}} }

var (
	alice   = addr("Alice Example", "alice@example.net")
	support = addr("", "support@contoso.test")
	monday  = date("2026-11-16T10:00:00+01:00")
)

// stdHeader is the header most corpus messages start with.
func stdHeader(id, subject string) string {
	return "From: Alice Example <alice@example.net>\nTo: support@contoso.test\nSubject: " + subject +
		"\nDate: Mon, 16 Nov 2026 10:00:00 +0100\nMessage-ID: <" + id + ">\n"
}

// std is the expectation for stdHeader.
func std(id, subject string) Message {
	return Message{MessageID: id, Subject: subject, Date: monday, From: alice, To: support}
}

func with(m Message, f func(*Message)) Message {
	f(&m)
	return m
}

func problems(codeParts ...string) []Problem {
	var out []Problem
	for i := 0; i+1 < len(codeParts); i += 2 {
		out = append(out, Problem{Code: codeParts[i], Part: codeParts[i+1]})
	}
	return out
}

// onDisk is the spec's message as written to the .eml file.
func (c corpusMail) onDisk() []byte {
	s := strings.ReplaceAll(c.raw, "\r\n", "\n")
	if !c.lf {
		s = strings.ReplaceAll(s, "\n", "\r\n")
	}
	return []byte(s)
}

// expected completes want with what the spec's bytes determine: the header
// fields in order (unfolded, with dec's decoded values) and the size.
func (c corpusMail) expected() *Message {
	m := c.want
	raw := string(c.onDisk())
	m.Size = int64(len(raw))
	if m.Problems != nil && m.Problems[0].Code == ProblemNotMIME {
		return &m
	}
	head := strings.ReplaceAll(raw, "\r\n", "\n")
	if i := strings.Index(head, "\n\n"); i >= 0 {
		head = head[:i+1]
	}
	var lines []string
	for _, l := range strings.SplitAfter(head, "\n") {
		if l == "" {
			continue
		}
		if (l[0] == ' ' || l[0] == '\t') && len(lines) > 0 {
			lines[len(lines)-1] += " " + strings.TrimSpace(l) // folding white space reads as one space
			continue
		}
		lines = append(lines, strings.TrimSuffix(l, "\n"))
	}
	used := map[string]bool{}
	for _, l := range lines {
		name, value, _ := strings.Cut(l, ":")
		value = strings.TrimSpace(value)
		if d, ok := c.dec[name]; ok && !used[name] {
			value, used[name] = d, true
		}
		m.Headers = append(m.Headers, Header{Name: name, Value: value})
	}
	return &m
}

// TestWriteCorpus writes testdata/corpus when run with -write-corpus.
func TestWriteCorpus(t *testing.T) {
	if !*writeCorpus {
		t.Skip("run with -write-corpus to rewrite testdata/corpus")
	}
	old, _ := filepath.Glob(filepath.Join(corpusDir, "*"))
	for _, f := range old {
		os.Remove(f)
	}
	for _, c := range corpus {
		if err := os.WriteFile(filepath.Join(corpusDir, c.name+".eml"), c.onDisk(), 0o644); err != nil {
			t.Fatal(err)
		}
		writeGolden(t, c.name, c.expected())
	}
}

func writeGolden(t *testing.T, name string, m *Message) {
	t.Helper()
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(corpusDir, name+".json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

var (
	pdf      = file("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", 1, 3000)
	png      = file("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 2, 2048)
	zip      = file("PK\x03\x04\x14\x00\x00\x00\x08\x00", 3, 4096)
	docx     = file("PK\x03\x04\x14\x00\x06\x00\x08\x00", 4, 5000)
	logo     = file("\x89PNG\r\n\x1a\n", 5, 512)
	contract = file("%PDF-1.4\n", 6, 600)
	xls      = file("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 7, 1024)
	p7s      = file("\x30\x82\x02\xb8\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02", 8, 700)
	tnef     = file("\x78\x9f\x3e\x22", 9, 1500)
	offer    = file("PK\x03\x04\x14\x00\x06\x00\x08\x00", 10, 2500)
	scan     = file("%PDF-1.5\n", 11, 900)
	letter   = file("%PDF-1.6\n", 12, 800)
	csvFile  = enc(charmap.Windows1252, "Artikel;Preis\r\nKäse;4,50 €\r\nBrötchen;0,40 €\r\n")
)
