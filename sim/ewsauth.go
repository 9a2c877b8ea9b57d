package sim

import (
	"encoding/base64"
	"net/http"
	"strings"
)

// The EWS virtual directory's logins besides OAuth, as on-premises
// Exchange has them: Basic and Windows authentication (Negotiate/NTLM)
// for the seeded users with passwords. A user opens its own mailbox and
// those it has FullAccess on without the ExchangeImpersonation header
// (delegate access: the mailbox is the one the request's folder or item
// ids name), and impersonates any mailbox with the header when it holds
// the ApplicationImpersonation role.

// bearerChallenge is what Exchange puts in WWW-Authenticate on a 401 for
// OAuth clients (the resource's app id and the authorization endpoint).
const bearerChallenge = `Bearer client_id="00000002-0000-0ff1-ce00-000000000000", trusted_issuers="00000001-0000-0000-c000-000000000000@*", ` +
	`token_types="app_asserted_user_v1 service_asserted_app_v1", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="invalid_token"`

// challenge answers 401 with the WWW-Authenticate schemes the virtual
// directory offers; ntlm, when set, is an NTLM CHALLENGE for scheme.
func (s *EWSServer) challenge(w http.ResponseWriter, r *http.Request, diagnostics, scheme, ntlm string) {
	if diagnostics != "" {
		w.Header().Set("x-ms-diagnostics", diagnostics)
	}
	if ntlm != "" {
		w.Header().Set("WWW-Authenticate", scheme+" "+ntlm)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	noBasic, noWindows := s.noBasic, s.noWindows
	s.mu.Unlock()
	w.Header().Add("WWW-Authenticate", bearerChallenge)
	if s.dir.hasPasswords() {
		if !noWindows {
			w.Header().Add("WWW-Authenticate", "Negotiate")
			w.Header().Add("WWW-Authenticate", "NTLM")
		}
		if !noBasic {
			w.Header().Add("WWW-Authenticate", `Basic realm="`+r.Host+`"`)
		}
	}
	w.WriteHeader(http.StatusUnauthorized)
}

// userLogin authenticates r as a seeded user: Basic credentials, an NTLM
// leg (answered with its challenge here: handled is then true), or the
// NTLM login of r's connection. It returns nil when r carries no user
// login it accepts; handled reports that a 401 was written.
func (s *EWSServer) userLogin(w http.ResponseWriter, r *http.Request) (u *User, handled bool) {
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	s.mu.Lock()
	noBasic, noWindows := s.noBasic, s.noWindows
	s.mu.Unlock()
	switch strings.ToLower(scheme) {
	case "basic":
		if noBasic {
			s.challenge(w, r, "", "", "")
			return nil, true
		}
		b, err := base64.StdEncoding.DecodeString(cred)
		name, pass, ok := strings.Cut(string(b), ":")
		if u = s.dir.login(name, pass); err != nil || !ok || u == nil {
			s.challenge(w, r, "", "", "")
			return nil, true
		}
		return u, false
	case "ntlm", "negotiate":
		if noWindows {
			s.challenge(w, r, "", "", "")
			return nil, true
		}
		ch, u, err := s.ntlm.step(s.dir, r.RemoteAddr, cred)
		switch {
		case ch != "":
			s.challenge(w, r, "", scheme, ch)
			return nil, true
		case err != nil:
			s.challenge(w, r, "", "", "")
			return nil, true
		}
		return u, false
	case "":
		if noWindows {
			return nil, false
		}
		return s.ntlm.user(r.RemoteAddr), false
	}
	return nil, false
}

// delegateMailbox is the mailbox a request without ExchangeImpersonation
// works on: the one its subscription is for, else the one a
// DistinguishedFolderId names, else the owner of the first folder or item
// id it names, else the user's own.
func (s *EWSServer) delegateMailbox(u *User, op *xnode) string {
	for _, id := range op.all("SubscriptionId") {
		s.mu.Lock()
		sub, ok := s.subs[strings.TrimSpace(id.text)]
		s.mu.Unlock()
		if ok {
			return sub.mailbox
		}
	}
	for _, m := range op.all("Mailbox") {
		if a := m.child("EmailAddress"); a != nil && strings.TrimSpace(a.text) != "" {
			return strings.ToLower(strings.TrimSpace(a.text))
		}
	}
	ids := map[string]bool{}
	for _, name := range []string{"FolderId", "ItemId", "ParentFolderId"} {
		for _, n := range op.all(name) {
			if id := n.attrs["Id"]; id != "" {
				ids[id] = true
			}
		}
	}
	if len(ids) > 0 {
		s.store.mu.Lock()
		defer s.store.mu.Unlock()
		for addr, mb := range s.store.boxes {
			for _, f := range mb.folders {
				if ids[f.id] {
					return addr
				}
				for _, m := range f.msgs {
					if ids[m.ItemID] {
						return addr
					}
				}
			}
		}
	}
	return strings.ToLower(u.Login)
}
