package message

import "io"

// base64Filter hands a base64 decoder only the base64 alphabet of r, as
// RFC 2045 §6.8 asks: line breaks and white space are dropped silently,
// other characters outside the alphabet are dropped and noted. Decoding
// stops at the first "=" padding; alphabet data after it is noted and
// ignored. Used with base64.RawStdEncoding, so missing padding is fine.
type base64Filter struct {
	r        io.Reader
	junk     bool  // a character outside the alphabet was skipped
	padded   bool  // the "=" padding was seen
	trailing bool  // data after the padding was ignored
	srcErr   error // r's error other than io.EOF
}

var base64Alphabet = func() (t [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" {
		t[c] = true
	}
	return t
}()

func (f *base64Filter) Read(b []byte) (int, error) {
	for {
		n, err := f.r.Read(b)
		w := 0
		for _, c := range b[:n] {
			switch {
			case base64Alphabet[c]:
				if f.padded {
					f.trailing = true
					continue
				}
				b[w] = c
				w++
			case c == '=':
				f.padded = true
			case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			default:
				f.junk = true
			}
		}
		if err != nil && err != io.EOF {
			f.srcErr = err
		}
		if w > 0 || n == 0 || err != nil {
			return w, err
		}
	}
}
