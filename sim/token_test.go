package sim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

const graphScope = "https://graph.microsoft.com/.default"

// claimsOf decodes a token's payload as a client would see it.
func claimsOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTokenScopeDecidesAudienceAndRoles(t *testing.T) {
	s := start(t, nil)
	for _, tc := range []struct {
		name, client, secret, scope, aud, other string
		roles                                   []string
	}{
		{"Exchange", app1, "secret-1", scope, exchangeResource, graphResource, []string{"IMAP.AccessAsApp"}},
		{"Graph", app1, "secret-1", graphScope, graphResource, exchangeResource, []string{"Mail.ReadWrite"}},
		{"Graph, resource with a trailing slash", app1, "secret-1", "https://graph.microsoft.com//.default", graphResource, exchangeResource, []string{"Mail.ReadWrite"}},
		{"Graph without Graph roles", app3, "secret-3", graphScope, graphResource, exchangeResource, nil},
	} {
		code, body := token(t, s, tenant, tc.client, tc.secret, tc.scope)
		tok, _ := body["access_token"].(string)
		if code != 200 || tok == "" {
			t.Errorf("%s: token = %d %v", tc.name, code, body)
			continue
		}
		c := claimsOf(t, tok)
		var roles []string
		if r, ok := c["roles"].([]any); ok {
			for _, x := range r {
				roles = append(roles, x.(string))
			}
		}
		if c["aud"] != tc.aud || !slices.Equal(roles, tc.roles) {
			t.Errorf("%s: aud %v, roles %v; want %s, %v", tc.name, c["aud"], c["roles"], tc.aud, tc.roles)
		}
		if _, has := c["roles"]; has && tc.roles == nil {
			t.Errorf("%s: a token without roles on its resource carries a roles claim: %v", tc.name, c)
		}
		if _, err := s.Tokens().Verify(tok, tc.aud); err != nil {
			t.Errorf("%s: Verify(token, %s) = %v", tc.name, tc.aud, err)
		}
		if _, err := s.Tokens().Verify(tok, tc.other); err == nil {
			t.Errorf("%s: Verify(token, %s) accepted a token for %s", tc.name, tc.other, tc.aud)
		}
	}
}

func TestTokenScopeRefused(t *testing.T) {
	s := start(t, nil)
	for _, tc := range []struct {
		name, scope string
		aadsts      int
		errName     string
	}{
		{"no scope", "", 900144, "invalid_request"},
		{"a permission, not /.default", "https://graph.microsoft.com/Mail.Read", 1002012, "invalid_scope"},
		{"two resources", scope + " " + graphScope, 700022, "invalid_scope"},
		{"/.default and a permission", graphScope + " offline_access", 70011, "invalid_scope"},
		{"a resource the tenant lacks", "https://graph.example/.default", 500011, "invalid_resource"},
		{"Exchange's EWS URL as a resource", "https://outlook.office365.com/EWS/Exchange.asmx/.default", 500011, "invalid_resource"},
	} {
		code, body := token(t, s, tenant, app1, "secret-1", tc.scope)
		codes, _ := body["error_codes"].([]any)
		desc, _ := body["error_description"].(string)
		if code != 400 || body["error"] != tc.errName || len(codes) != 1 || int(codes[0].(float64)) != tc.aadsts || body["access_token"] != nil {
			t.Errorf("%s: %d %v; want 400 %s AADSTS%d", tc.name, code, body, tc.errName, tc.aadsts)
			continue
		}
		if !strings.HasPrefix(desc, fmt.Sprintf("AADSTS%d: ", tc.aadsts)) {
			t.Errorf("%s: description %q", tc.name, desc)
		}
	}
}
