// Package auth is in charge of Entra ID (Azure AD) app-only access tokens for
// Exchange Online: the OAuth 2.0 client-credentials grant against
// {authority}/{tenant}/oauth2/v2.0/token with a client secret, a certificate
// (a PS256-signed client assertion) or a federated token file (workload
// identity), a per-app token cache that refreshes early, classification of
// AADSTS errors into "retry later" and "an admin must fix this" with the fix
// in plain words, and decoding of token claims for diagnostics.
//
// Usage:
//
//	src, err := auth.New(auth.Credentials{
//		Authority: "https://login.microsoftonline.com",
//		TenantID:  tenantID,
//		ClientID:  clientID,
//		ClientSecret: secret,
//	}, nil)
//	...
//	tok, err := src.Token(ctx) // cached; safe for concurrent use
//
// Secrets, tokens and client assertions never appear in logs or errors:
// [Token] and [Credentials] print as "[redacted]" with every fmt verb and
// through log/slog.
//
// The request itself is sent by golang.org/x/oauth2/clientcredentials (the
// assertions go in its EndpointParams); this package adds what it does not
// do: the cache and single flight, lifetime clamping on the Source's clock,
// the response cap, the AADSTS classification of its *oauth2.RetrieveError,
// and scrubbing of anything the server echoes back.
//
// The protocol facts behind this package (request and response shapes, the
// AADSTS codes) are collected in PROTOCOLS.md §1–2.
package auth
