package message

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite testdata/corpus/*.json from the parser's output (for intentional changes; review the diff)")

// comparable is m as the goldens compare it: problem details are prose,
// not contract, and empty lists equal absent ones.
func comparable(t *testing.T, m *Message) string {
	t.Helper()
	c := *m
	c.Problems = nil
	for _, p := range m.Problems {
		c.Problems = append(c.Problems, Problem{Code: p.Code, Part: p.Part})
	}
	for _, l := range []*[]Address{&c.From, &c.ReplyTo, &c.To, &c.Cc} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	for _, l := range []*[]string{&c.InReplyTo, &c.References} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	if len(c.Headers) == 0 {
		c.Headers = nil
	}
	if len(c.Attachments) == 0 {
		c.Attachments = nil
	}
	b, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	return string(b)
}

// TestCorpus parses every testdata/corpus/*.eml and compares the result
// with the golden NAME.json beside it.
func TestCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(corpusDir, "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 45 {
		t.Fatalf("corpus has %d messages, want at least 45", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".eml")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got := Parse(raw, nil)
			checkInvariants(t, got)
			for _, a := range got.Attachments {
				if a.SHA256 != sum(a.Content) || a.Size != int64(len(a.Content)) {
					t.Errorf("attachment %q: sha256/size do not describe its content", a.Filename)
				}
			}
			if *update {
				writeGolden(t, name, got)
				return
			}
			b, err := os.ReadFile(filepath.Join(corpusDir, name+".json"))
			if err != nil {
				t.Fatalf("golden: %v (write it with -write-corpus or -update)", err)
			}
			var want Message
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatalf("golden %s.json: %v", name, err)
			}
			if g, w := comparable(t, got), comparable(t, &want); g != w {
				t.Errorf("parsed message differs from %s.json:\n%s", name, lineDiff(w, g))
			}
		})
	}
}

// TestCorpusSpecsMatchFiles keeps the .eml files and the specs that wrote
// them in step, so a hand edit of either shows up.
func TestCorpusSpecsMatchFiles(t *testing.T) {
	for _, c := range corpus {
		raw, err := os.ReadFile(filepath.Join(corpusDir, c.name+".eml"))
		if err != nil {
			t.Fatal(err)
		}
		if string(raw) != string(c.onDisk()) {
			t.Errorf("%s.eml differs from its spec; run go test ./message -run TestWriteCorpus -write-corpus", c.name)
		}
		if !c.lf && strings.Count(string(raw), "\n") != strings.Count(string(raw), "\r\n") {
			t.Errorf("%s.eml has bare LF line endings", c.name)
		}
	}
}

// lineDiff shows the lines of want and got that differ, in order.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			out.WriteString("- " + wl + "\n+ " + gl + "\n")
		}
	}
	return out.String()
}

// knownCodes are the documented problem codes.
var knownCodes = []string{ProblemBadCharset, ProblemBadEncoding, ProblemBadHeader, ProblemBadDate, ProblemBadAddress, ProblemTruncatedMIME,
	ProblemTooDeep, ProblemTooManyParts, ProblemHeaderTooLarge, ProblemNoBody, ProblemNotMIME, ProblemTooLarge}

// checkInvariants holds for any input: every string valid UTF-8, the
// message serialisable, only documented problem codes.
func checkInvariants(t testing.TB, m *Message) {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	if !utf8.Valid(b) {
		t.Fatal("JSON is not valid UTF-8")
	}
	strs := []string{m.MessageID, m.Subject, m.Text, m.HTML}
	strs = append(append(strs, m.InReplyTo...), m.References...)
	for _, l := range [][]Address{m.From, m.ReplyTo, m.To, m.Cc} {
		for _, a := range l {
			strs = append(strs, a.Name, a.Address)
		}
	}
	if m.Sender != nil {
		strs = append(strs, m.Sender.Name, m.Sender.Address)
	}
	for _, h := range m.Headers {
		strs = append(strs, h.Name, h.Value)
	}
	for _, a := range m.Attachments {
		strs = append(strs, a.Filename, a.ContentType, a.ContentID)
	}
	for _, p := range m.Problems {
		strs = append(strs, p.Part, p.Detail)
		if !slices.Contains(knownCodes, p.Code) {
			t.Fatalf("undocumented problem code %q", p.Code)
		}
	}
	for _, s := range strs {
		if !utf8.ValidString(s) {
			t.Fatalf("invalid UTF-8: %q", s)
		}
	}
}
