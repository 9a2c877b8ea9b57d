package config

// protocol is what config knows of one transport: its name in the file,
// the server it talks to by default, and how its server key is checked.
// A new transport adds one row here (and its name to the schema's enum).
type protocol struct {
	name          string
	defaultServer string   // with auth: oauth (Exchange Online); other auths name their server
	auths         []string // values of the auth key, the default first
	checkServer   func(d *decoder, a *Account, p string)
}

// protocols lists the transports, the default first.
var protocols = []protocol{
	{name: "imap", defaultServer: DefaultIMAPServer, auths: []string{AuthOAuth, AuthPassword}, checkServer: func(d *decoder, a *Account, p string) {
		d.hostPort(p+".server", a.Server, "write host:port of the IMAP server, e.g. outlook.office365.com:993", false)
	}},
	{name: "ews", defaultServer: DefaultEWSServer, auths: []string{AuthOAuth, AuthNTLM, AuthBasic}, checkServer: func(d *decoder, a *Account, p string) {
		if d.httpURL(p+".server", a.Server, "write the EWS endpoint URL, e.g. https://outlook.office365.com/EWS/Exchange.asmx") {
			d.plainHTTP(a, p, p+".server", a.Server, carried(a))
		}
	}},
	{name: "graph", defaultServer: DefaultGraphServer, auths: []string{AuthOAuth}, checkServer: func(d *decoder, a *Account, p string) {
		if d.httpURL(p+".server", a.Server, "write Microsoft Graph's base URL with its version, e.g. https://graph.microsoft.com/v1.0") {
			d.plainHTTP(a, p, p+".server", a.Server, "the bearer token")
		}
	}},
}

// protocolNamed is the protocol called name, if there is one.
func protocolNamed(name string) (protocol, bool) {
	for _, pr := range protocols {
		if pr.name == name {
			return pr, true
		}
	}
	return protocol{}, false
}

func protocolNames() []string {
	names := make([]string, len(protocols))
	for i, pr := range protocols {
		names[i] = pr.name
	}
	return names
}

// carried names what a's requests carry that plain http would expose.
func carried(a *Account) string {
	switch a.Auth {
	case AuthBasic:
		return "the password"
	case AuthNTLM:
		return "the NTLM exchange and the mail"
	}
	return "the bearer token"
}
