package auth_test

import (
	"strings"
	"testing"

	"github.com/mailpoller/mailpoller/auth"
)

func FuzzParseClaims(f *testing.F) {
	f.Add(accessToken(1))
	f.Add(jwt(`{"aud":["a","b"],"roles":null,"exp":"x"}`))
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := auth.ParseClaims(tok)
		if err != nil && len(tok) > 8 && strings.Contains(err.Error(), tok) {
			t.Errorf("error %q shows the token", err)
		}
		_ = c.HasRole("IMAP.AccessAsApp")
	})
}
