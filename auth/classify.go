package auth

import (
	"fmt"
	"net/http"
)

// rule says how to treat one AADSTS code.
type rule struct {
	transient bool
	fix       string
}

// Fix texts shared by several codes.
const (
	fixNotInTenant = "no app with this client_id is known in this tenant: check client_id and tenant_id " +
		"(and the cloud); for an app registered in another tenant, a Global Administrator of this tenant must " +
		"grant admin consent so that its service principal exists here"
	fixConsent = "the app lacks a consented permission: on the app registration add the application permission " +
		"(Office 365 Exchange Online → IMAP.AccessAsApp, or full_access_as_app for EWS) and click \"Grant admin consent\""
	fixDisabled = "the app's service principal is disabled in this tenant: an admin must enable it " +
		"(Enterprise applications → the app → Properties → Enabled for users to sign in)"
	fixAssertion = "the certificate assertion was rejected: upload this certificate (its public part) to the app " +
		"registration under Certificates & secrets, check that cert_file and key_file belong together, and " +
		"check this machine's clock (NTP)"
	fixFederated = "no federated identity credential on the app matches the presented token: compare the " +
		"credential's issuer, subject and audience (usually api://AzureADTokenExchange) with the token in " +
		"federated_token_file; matching is case-sensitive"
	fixPolicy = "a Conditional Access or tenant security policy blocked this app: a tenant admin must " +
		"exclude this workload identity from the policy or adjust it"
	fixTenantEndpoint = "app-only tokens need the tenant-specific endpoint: set tenant_id to the directory GUID " +
		"or a verified domain, not common, organizations or consumers"
	fixServer    = "Entra ID had a temporary problem; retrying with backoff"
	fixScope     = "the scope must be one resource ending in /.default, e.g. https://outlook.office365.com/.default"
	fixBadClient = "this looks like a bug in mailpoller's token request; report it with the trace id"
)

// aadsts maps AADSTS codes to their treatment (PROTOCOLS.md §2).
var aadsts = map[int]rule{
	7000215: {false, "the client secret is wrong: copy the secret's Value (shown only once, when the secret is " +
		"created), not its Secret ID, and make sure it was not cut short or altered by quoting"},
	7000222: {false, "the client secret has expired: create a new secret on the app registration (Certificates & " +
		"secrets), put its Value in the config, or switch to a certificate"},
	7000218: {false, "the request carried no credential: set client_secret, a certificate or federated_token_file"},
	70002: {false, "the credential was not accepted: check client_secret (the Value, not the Secret ID) or the " +
		"certificate, and that client_id is right"},
	700016: {false, fixNotInTenant},
	700011: {false, fixNotInTenant},
	90002: {false, "the tenant was not found: check tenant_id (the directory GUID or a verified domain) and that " +
		"cloud/authority is the tenant's national cloud"},
	900023: {false, "tenant_id is neither a tenant GUID nor a domain name: check tenant_id"},
	50049:  {false, "the login host is not valid: check authority, or use cloud: public, usgov or china"},
	90038: {false, "the tenant belongs to another national cloud: set cloud (usgov or china) or authority to " +
		"that cloud's login host"},
	500011: {false, "the resource is not in this tenant: the scope must be https://outlook.office365.com/.default " +
		"and the tenant must have Exchange Online"},
	70011:   {false, fixScope},
	1002012: {false, "client-credential tokens need a scope ending in /.default (https://outlook.office365.com/.default), not a single permission such as IMAP.AccessAsApp"},
	700022:  {false, fixScope},
	700023:  {false, fixScope},
	900144:  {false, fixBadClient},
	65001:   {false, fixConsent},
	90094:   {false, fixConsent},
	650056:  {false, fixConsent},
	650057:  {false, fixConsent},
	7000112: {false, fixDisabled},
	70001:   {false, fixDisabled},
	700025: {false, "the app is registered as a public client, which may not use secrets or certificates: " +
		"use a confidential (daemon/web) app registration"},
	700027:  {false, fixAssertion},
	50012:   {false, fixAssertion},
	50013:   {false, fixAssertion},
	500133:  {false, "the certificate assertion is outside its validity time: sync this machine's clock (NTP)"},
	70021:   {false, fixFederated},
	700213:  {false, fixFederated},
	7002137: {false, fixFederated},
	7002138: {false, fixFederated},
	53003:   {false, fixPolicy},
	530035:  {false, fixPolicy},
	530032:  {false, fixPolicy},
	9001023: {false, fixTenantEndpoint},
	90130:   {false, fixTenantEndpoint},
	90124:   {false, fixTenantEndpoint},
	50194:   {false, fixTenantEndpoint},
	50196: {true, "Entra ID saw the same token requested too often (loop detected); backing off. If this " +
		"repeats, check that several processes do not request tokens for this app in a loop"},
	90055: {true, "the tenant is being throttled by Entra ID; backing off"},
	90024: {true, fixServer},
	50033: {true, fixServer},
	90006: {true, fixServer},
	90033: {true, fixServer},
	90090: {true, fixServer},
}

// oauthCodes gives a fix for an "error" value when the AADSTS code is not in
// the table.
var oauthCodes = map[string]string{
	"invalid_client": "the app's credential was refused: check client_id and the client secret's Value or the certificate",
	"unauthorized_client": "the app may not use this grant in this tenant: check client_id and tenant_id and that " +
		"a tenant admin consented to the app",
	"invalid_resource": "the resource is not in this tenant: use scope https://outlook.office365.com/.default; " +
		"the tenant needs Exchange Online",
	"invalid_scope":   fixScope,
	"invalid_request": "the token request was refused as invalid: check tenant_id, client_id and scope",
	"invalid_grant":   "the credential or assertion was refused: check the credential configured for this app",
	"access_denied":   "access was denied: a tenant admin must allow this app",
}

// classify returns whether an error response is transient and what to do.
func classify(status int, code string, aadstsCode int) (bool, string) {
	if r, ok := aadsts[aadstsCode]; ok {
		return r.transient, r.fix
	}
	if code == "temporarily_unavailable" || status >= 500 || status == http.StatusTooManyRequests ||
		status == http.StatusRequestTimeout {
		return true, fixServer
	}
	fix := oauthCodes[code]
	if fix == "" {
		fix = "Entra ID refused the token request; check tenant_id, client_id, the credential and scope"
	}
	if aadstsCode != 0 {
		fix += fmt.Sprintf("; details: https://login.microsoftonline.com/error?code=%d", aadstsCode)
	}
	return false, fix
}
