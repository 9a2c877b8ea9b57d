package message

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"regexp"
	"strings"

	gomessage "github.com/emersion/go-message"
)

// encodedWord matches an RFC 2047 encoded word: =?charset?B|Q?text?=.
var encodedWord = regexp.MustCompile(`=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=`)

// maxWords bounds the encoded words decoded in one header value.
const maxWords = 1000

// decodeWords resolves the RFC 2047 encoded words in v. Adjacent words
// (separated by white space only) lose that white space, and adjacent
// words in one charset are joined before their charset is decoded, so a
// character split across two words survives. A word that is malformed
// or in an unknown charset stays as written and is recorded as
// bad_header. B words without their "=" padding are accepted.
func (p *parser) decodeWords(name, v string) string {
	if !strings.Contains(v, "=?") {
		return v
	}
	matches := encodedWord.FindAllStringSubmatchIndex(v, maxWords)
	if len(matches) == 0 {
		return v
	}
	var out strings.Builder
	var run []byte   // decoded bytes of the current run of adjacent words
	runCharset := "" // their charset
	runRaw := ""     // the run as written, kept if the charset is unknown
	flush := func() {
		if runCharset == "" {
			return
		}
		if s, err := toUTF8(runCharset, run); err == nil {
			out.WriteString(s)
		} else {
			p.problem("", ProblemBadHeader, fmt.Sprintf("%s: %v", name, err))
			out.WriteString(runRaw)
		}
		run, runCharset, runRaw = nil, "", ""
	}
	last := 0
	for _, m := range matches {
		gap := v[last:m[0]]
		word := v[m[0]:m[1]]
		charset, _, _ := strings.Cut(v[m[2]:m[3]], "*") // RFC 2231 language suffix
		data, ok := wordBytes(v[m[4]:m[5]], v[m[6]:m[7]])
		last = m[1]
		if !ok {
			flush()
			out.WriteString(gap + word)
			p.problem("", ProblemBadHeader, fmt.Sprintf("%s: malformed encoded word %s", name, word))
			continue
		}
		if _, err := toUTF8(charset, nil); err != nil {
			flush()
			out.WriteString(gap + word)
			p.problem("", ProblemBadHeader, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		adjacent := runCharset != "" && strings.TrimSpace(gap) == ""
		if adjacent && strings.EqualFold(charset, runCharset) {
			run = append(run, data...)
			runRaw += gap + word
			continue
		}
		flush()
		if !adjacent {
			out.WriteString(gap)
		}
		run, runCharset, runRaw = data, charset, word
	}
	flush()
	out.WriteString(v[last:])
	return out.String()
}

// wordBytes decodes the text of an encoded word.
func wordBytes(enc, text string) ([]byte, bool) {
	if enc == "B" || enc == "b" {
		text = strings.TrimRight(text, "=")
		b, err := base64.RawStdEncoding.DecodeString(text)
		return b, err == nil
	}
	out := make([]byte, 0, len(text))
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c == '_':
			out = append(out, ' ')
		case c == '=':
			if i+2 >= len(text) || unhex(text[i+1]) < 0 || unhex(text[i+2]) < 0 {
				return nil, false
			}
			out = append(out, byte(unhex(text[i+1])<<4|unhex(text[i+2])))
			i += 2
		default:
			out = append(out, c)
		}
	}
	return out, true
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// toUTF8 converts b from charset to UTF-8 (invalid sequences are left for
// the caller's UTF-8 check to replace).
func toUTF8(charset string, b []byte) (string, error) {
	switch strings.ToLower(charset) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return string(b), nil
	}
	r, err := gomessage.CharsetReader(charset, bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	s, err := io.ReadAll(r)
	return string(s), err
}
