package message

import (
	"runtime"
	"strings"
	"testing"
)

// TestHostileHeaders feeds header values built to make a careless reader
// quadratic. Time is not asserted (machines differ); allocation is: a
// quadratic step copies far more than a small multiple of the input.
func TestHostileHeaders(t *testing.T) {
	for _, h := range []string{
		"To: " + strings.Repeat("a,", 400_000),
		"To: " + strings.Repeat("a;", 400_000) + "x@example.net",
		"To: " + strings.Repeat(`"`, 400_000),
		"To: " + strings.Repeat("(", 400_000),
		"To: " + strings.Repeat("<", 400_000) + "@",
		"To: " + strings.Repeat("a@example.net, ", 60_000),
		"To: " + strings.Repeat("Müller, Hans <h@example.net>, ", 30_000),
		"Subject: " + strings.Repeat("=?utf-8?B?w6k=?= ", 50_000),
		"Subject: " + strings.Repeat("=?x-unknown?B?w6k=?= ", 40_000),
		"Subject: " + strings.Repeat("=?", 400_000),
		"Content-Type: text/plain; " + strings.Repeat("a*1*=b;", 100_000),
		"Content-Type: text/plain; name*0=" + strings.Repeat("%41", 250_000),
		"Date: " + strings.Repeat("Mon, ", 150_000),
		"Message-ID: " + strings.Repeat("<a>", 250_000),
		"References: " + strings.Repeat("<a@b> ", 150_000),
		strings.Repeat("X-A: 1\r\n", 100_000) + "X-B: 2",
	} {
		raw := []byte("From: a@example.net\r\n" + h + "\r\n\r\nbody\r\n")
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		m := Parse(raw, nil)
		runtime.ReadMemStats(&after)
		checkInvariants(t, m)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 100*uint64(len(raw)) {
			t.Errorf("%.40q: %d bytes allocated for %d of input", h, alloc, len(raw))
		} else {
			t.Logf("%.40q: %.1f bytes allocated per input byte", h, float64(alloc)/float64(len(raw)))
		}
	}
}

// TestHostileBodies does the same for bodies: many body parts, empty
// parts, encodings made of nothing but line breaks or padding.
func TestHostileBodies(t *testing.T) {
	parts := func(n int, part string) string {
		return "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + strings.Repeat("--b\r\n"+part, n) + "--b--\r\n"
	}
	line := strings.Repeat("x", 76) + "\r\n"
	for _, tc := range []struct{ name, raw string }{
		{"999 text parts", parts(999, "Content-Type: text/plain\r\n\r\n"+strings.Repeat(line, 30))},
		{"999 html parts", parts(999, "Content-Type: text/html\r\n\r\n"+strings.Repeat(line, 30))},
		{"a million empty parts", parts(1_000_000, "")},
		{"soft line breaks only", "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + strings.Repeat("=\r\n", 500_000)},
		{"padding only", "Content-Transfer-Encoding: base64\r\n\r\n" + strings.Repeat("====\r\n", 300_000)},
		{"junk only", "Content-Transfer-Encoding: base64\r\n\r\n" + strings.Repeat("!!!!\r\n", 300_000)},
		{"one long line", "Content-Type: text/plain\r\n\r\n" + strings.Repeat("x", 2_000_000)},
	} {
		raw := []byte("From: a@example.net\r\nSubject: s\r\n" + tc.raw)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		m := Parse(raw, nil)
		runtime.ReadMemStats(&after)
		checkInvariants(t, m)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 100*uint64(len(raw)) {
			t.Errorf("%s: %d bytes allocated for %d of input", tc.name, alloc, len(raw))
		} else {
			t.Logf("%s: %.1f bytes allocated per input byte", tc.name, float64(alloc)/float64(len(raw)))
		}
	}
}
