package imap

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkScan measures the framing scan over what a backlog fetch reads:
// the lines of a UID FETCH of sizes, and FETCH responses whose bodies are
// literals, in reads of 32 KiB (a TLS record is at most 16 KiB).
func BenchmarkScan(b *testing.B) {
	var sizes, bodies bytes.Buffer
	for i := 1; i <= 3000; i++ {
		fmt.Fprintf(&sizes, "* %d FETCH (UID %d RFC822.SIZE %d INTERNALDATE \"02-Dec-2026 21:00:00 +0000\")\r\n", i, i, 5000+i)
	}
	body := bytes.Repeat([]byte("x"), 300<<10)
	for i := 1; i <= 20; i++ {
		fmt.Fprintf(&bodies, "* %d FETCH (UID %d BODY[] {%d}\r\n", i, i, len(body))
		bodies.Write(body)
		bodies.WriteString(")\r\n")
	}
	for _, c := range []struct {
		name string
		data []byte
	}{{"sizes", sizes.Bytes()}, {"bodies", bodies.Bytes()}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.data)))
			for b.Loop() {
				cn := newConn(nil, defaultMaxLine)
				for d := c.data; len(d) > 0; {
					k := min(len(d), 32<<10)
					if err := cn.scan(d[:k]); err != nil {
						b.Fatal(err)
					}
					d = d[k:]
				}
			}
		})
	}
}
