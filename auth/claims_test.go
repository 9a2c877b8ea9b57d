package auth_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/auth"
)

func jwt(payload string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"typ":"JWT","alg":"RS256"}`)) + "." + enc.EncodeToString([]byte(payload)) + ".c2ln"
}

func TestParseClaims(t *testing.T) {
	c, err := auth.ParseClaims(accessToken(1))
	if err != nil {
		t.Fatalf("ParseClaims() = %v", err)
	}
	want := auth.Claims{
		Audience: "https://outlook.office365.com", Tenant: testTenant, AppID: testClient,
		ObjectID: "9d8c7b6a-0000-4000-8000-000000000001", Roles: []string{"IMAP.AccessAsApp"},
		Issuer: "https://sts.windows.net/" + testTenant + "/", AppIDACR: "1",
		IssuedAt: time.Unix(1700000000, 0), NotBefore: time.Unix(1700000000, 0), Expiry: time.Unix(1700003900, 0),
	}
	if c.Audience != want.Audience || c.Tenant != want.Tenant || c.AppID != want.AppID || c.ObjectID != want.ObjectID ||
		c.Issuer != want.Issuer || c.AppIDACR != want.AppIDACR || !c.IssuedAt.Equal(want.IssuedAt) ||
		!c.NotBefore.Equal(want.NotBefore) || !c.Expiry.Equal(want.Expiry) || len(c.Roles) != 1 {
		t.Errorf("ParseClaims() = %+v, want %+v", c, want)
	}
	if !c.HasRole("IMAP.AccessAsApp") || c.HasRole("full_access_as_app") || c.HasRole("imap.accessasapp") {
		t.Errorf("HasRole gives wrong answers for roles %v", c.Roles)
	}
}

func TestParseClaimsV2AndArrayAudience(t *testing.T) {
	c, err := auth.ParseClaims(jwt(`{"aud":["https://outlook.office365.com/","other"],"azp":"app-2","azpacr":"2","exp":1700000000.5,"ver":"2.0"}`))
	if err != nil {
		t.Fatalf("ParseClaims() = %v", err)
	}
	if c.Audience != "https://outlook.office365.com/" || c.AppID != "app-2" || c.AppIDACR != "2" ||
		!c.Expiry.Equal(time.Unix(1700000000, 5e8)) || len(c.Roles) != 0 || c.HasRole("x") {
		t.Errorf("ParseClaims() = %+v", c)
	}
}

func TestParseClaimsErrors(t *testing.T) {
	secretish := "EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA"
	for name, tok := range map[string]string{
		"opaque":      secretish,
		"four parts":  "a.b.c.d",
		"bad base64":  "eyJ.%%%." + secretish,
		"not json":    jwt("not json " + secretish),
		"aud numeric": jwt(`{"aud":5}`),
	} {
		_, err := auth.ParseClaims(tok)
		if err == nil {
			t.Errorf("%s: ParseClaims() = nil error", name)
			continue
		}
		if strings.Contains(err.Error(), secretish) {
			t.Errorf("%s: error %q shows the token", name, err)
		}
	}
}
