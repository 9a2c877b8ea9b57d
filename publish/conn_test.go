package publish

import "testing"

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://ops:s3cret@nats1:4222, tls://tok3n@nats2:4222", "nats://[redacted]@nats1:4222,tls://[redacted]@nats2:4222"},
		{"ops:s3cret@nats1:4222", "[redacted]@nats1:4222"},
	} {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
