package message

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"testing"
	"time"
)

func TestEncodedWords(t *testing.T) {
	for _, tc := range []struct {
		subject, want string
		problems      []string
	}{
		{"=?utf-8?B?w6k=?=", "é", nil},
		{"=?utf-8?B?w6k?=", "é", nil}, // padding missing
		{"=?utf-8?q?caf=C3=A9_au_lait?=", "café au lait", nil},
		{"=?utf-8?B?w6k=?=  \t =?iso-8859-1?Q?=E9?=", "éé", nil}, // space between adjacent words dropped
		{"a =?utf-8?B?w6k=?= b", "a é b", nil},
		{"=?utf-8?B?4oI=?= =?UTF-8?B?rA==?=", "€", nil}, // one character split across two words
		{"=?utf-8*en?Q?hi?=", "hi", nil},                // RFC 2231 language
		{"=?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=", "こんにちは", nil},
		{"=?utf-8?B?broken***?= and =?utf-8?B?w6k?=", "=?utf-8?B?broken***?= and é", []string{ProblemBadHeader}},
		{"=?utf-8?Q?bad=ZZ?=", "=?utf-8?Q?bad=ZZ?=", []string{ProblemBadHeader}},
		{"é =?x-unknown?Q?x?= =?utf-8?B?w6k=?=", "é =?x-unknown?Q?x?= é", []string{ProblemBadHeader}},
		{"not =? a word ?=", "not =? a word ?=", nil},
	} {
		m := parseCRLF("From: a@example.net\nSubject: " + tc.subject + "\n\nx\n")
		checkInvariants(t, m)
		if m.Subject != tc.want || !slices.Equal(codes(m), tc.problems) {
			t.Errorf("%q: subject %q problems %v, want %q %v", tc.subject, m.Subject, codes(m), tc.want, tc.problems)
		}
	}
}

func TestLenientDates(t *testing.T) {
	for _, tc := range []struct{ date, want string }{
		{"Mon, 16 Nov 2026 10:00:00 +0100", "2026-11-16T10:00:00+01:00"},
		{"Mon, 16 Nov 2026 10:00:00 +0100 (CET)", "2026-11-16T10:00:00+01:00"},
		{"16 Nov 2026 10:00 +0100", "2026-11-16T10:00:00+01:00"},
		{"Mon, 16 Nov 26 10:00:00 +0100", "2026-11-16T10:00:00+01:00"},
		{"Mon,  16  Nov 2026   10:00:00 +0100", "2026-11-16T10:00:00+01:00"},
		{"Mon, 16 Nov 2026 10:00:00 +01:00", "2026-11-16T10:00:00+01:00"},
		{"Mon, 16 Nov 2026 10:00:00 GMT", "2026-11-16T10:00:00Z"},
		{"Mon, 16 Nov 2026 10:00:00 EST", "2026-11-16T10:00:00-05:00"},
		{"Mon, 16 Nov 2026 10:00:00 CEST", "2026-11-16T10:00:00+02:00"},
		{"Mon, 16 Nov 2026 10:00:00 +0100 CET", "2026-11-16T10:00:00+01:00"},
		{"Monday, 16-Nov-26 10:00:00 GMT", "2026-11-16T10:00:00Z"},
		{"Mon Nov 16 10:00:00 2026", "2026-11-16T10:00:00Z"},
		{"2026-11-16T10:00:00+01:00", "2026-11-16T10:00:00+01:00"},
		{"2026-11-16 10:00:00", "2026-11-16T10:00:00Z"},
		{"Mon, 16 Nov 2026 10:00:00", "2026-11-16T10:00:00Z"},
	} {
		m := parseCRLF("From: a@example.net\nDate: " + tc.date + "\n\nx\n")
		want, _ := time.Parse(time.RFC3339, tc.want)
		if m.Date == nil || !m.Date.Equal(want) || m.Date.Format(time.RFC3339) != tc.want || len(m.Problems) != 0 {
			t.Errorf("%q: date %v problems %+v, want %s", tc.date, m.Date, m.Problems, tc.want)
		}
	}
	for _, bad := range []string{"yesterday", "31.12.2026", "Mon, 32 Nov 2026 10:00:00 +0100", "Mon, 16 Nov 2026 25:00:00 +0100"} {
		m := parseCRLF("From: a@example.net\nDate: " + bad + "\n\nx\n")
		if m.Date != nil || !slices.Equal(codes(m), []string{ProblemBadDate}) {
			t.Errorf("%q: date %v problems %v, want nil and bad_date", bad, m.Date, codes(m))
		}
	}
}

func TestLenientAddresses(t *testing.T) {
	for _, tc := range []struct {
		to      string
		want    []Address
		problem bool
	}{
		{"undisclosed-recipients:;", []Address{}, false},
		{"Team: d@example.org, e@example.org;", []Address{{"", "d@example.org"}, {"", "e@example.org"}}, false},
		{"Müller, Hans <hans@example.de>, b@example.de", []Address{{"Müller, Hans", "hans@example.de"}, {"", "b@example.de"}}, true},
		{`"Bob" <bob@example.net>; carol@example.net`, []Address{{"Bob", "bob@example.net"}, {"", "carol@example.net"}}, true},
		{"support@contoso.test, <<broken@@, \"Bob\" <bob@example.org>", []Address{{"", "support@contoso.test"}, {"Bob", "bob@example.org"}}, true},
		{`"=?utf-8?Q?J=C3=BCrgen?=" <j@example.de>`, []Address{{"Jürgen", "j@example.de"}}, false},
		{`=?utf-8?Q?J=C3=BCrgen_M=C3=BCller?= <j@example.de>`, []Address{{"Jürgen Müller", "j@example.de"}}, false},
		{"<<<>>>", nil, true},
	} {
		m := parseCRLF("From: a@example.net\nTo: " + tc.to + "\n\nx\n")
		checkInvariants(t, m)
		got := m.To
		if len(got) == 0 && len(tc.want) == 0 {
			got = tc.want
		}
		if !slices.Equal(got, tc.want) || slices.Contains(codes(m), ProblemBadAddress) != tc.problem {
			t.Errorf("%q: to %+v problems %v, want %+v (bad_address %v)", tc.to, m.To, codes(m), tc.want, tc.problem)
		}
	}
}

func TestLenientBase64(t *testing.T) {
	for _, tc := range []struct {
		body, want string
		problem    string
	}{
		{"aGVsbG8gd29y\nbGQ=\n", "hello world", ""},
		{"aGVsbG8gd29ybGQ\n", "hello world", ""},                  // padding missing
		{"aGVs bG8g\td29y\r\nbGQ=", "hello world", ""},            // white space anywhere
		{"aGVs!bG8g*d29ybGQ=", "hello world", ProblemBadEncoding}, // junk skipped (RFC 2045 §6.8)
		{"aGVsbG8=\naGk=\n", "hello", ProblemBadEncoding},         // data after the padding
		{"aGVsbG8gd29ybGQ=a", "hello world", ProblemBadEncoding},
	} {
		m := parseCRLF("From: a@example.net\nContent-Type: application/octet-stream; name=f.bin\nContent-Transfer-Encoding: base64\n\n" + tc.body)
		var want []string
		if tc.problem != "" {
			want = []string{tc.problem}
		}
		if len(m.Attachments) != 1 || string(m.Attachments[0].Content) != tc.want || !slices.Equal(codes(m), want) {
			t.Errorf("%q: attachments %+v problems %+v, want %q %v", tc.body, m.Attachments, m.Problems, tc.want, want)
			continue
		}
		s := sha256.Sum256([]byte(tc.want))
		if m.Attachments[0].SHA256 != hex.EncodeToString(s[:]) {
			t.Errorf("%q: sha256 %s does not describe %q", tc.body, m.Attachments[0].SHA256, tc.want)
		}
	}
	// Cut off inside a multipart: the part's end is missing, not its encoding.
	m := parseCRLF("From: a@example.net\nContent-Type: multipart/mixed; boundary=z\n\n--z\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0x")
	if !slices.Equal(codes(m), []string{ProblemTruncatedMIME}) || len(m.Attachments) != 1 || string(m.Attachments[0].Content) != "%PDF-1" {
		t.Errorf("problems %+v attachments %+v", m.Problems, m.Attachments)
	}
}

func TestNullReturnPathWithSpace(t *testing.T) {
	m := parseCRLF("Return-Path: < >\nFrom: Mail Delivery System <MAILER-DAEMON@mx.example.org>\nSubject: Undelivered\n\nx\n")
	if !m.Auto.Bounce {
		t.Errorf("auto %+v, want bounce", m.Auto)
	}
}
