package config

import (
	"fmt"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mailpoller/mailpoller/internal/httpsafe"
)

func (d *decoder) validateAccount(a *Account, p string) {
	switch {
	case a.Name == "":
		d.at(p+".name", "missing", "give the account a short name of a-z, 0-9, - or _ (e.g. support); it is used in NATS subjects, logs and metrics")
	case !namePattern.MatchString(a.Name):
		d.at(p+".name", quoted(a.Name)+" is not valid", "use only lower-case a-z, 0-9, - and _ (e.g. support); it is used in NATS subjects, logs and metrics")
	case a.Name == "deadletter":
		d.at(p+".name", `"deadletter" is reserved`, "choose another name; <subject_prefix>.deadletter.> carries the dead letters of every account")
	}
	d.oneOf(p+".protocol", a.Protocol, protocolNames()...)
	pr, known := protocolNamed(a.Protocol)
	if known {
		d.oneOf(p+".auth", a.Auth, pr.auths...)
	}
	d.validateLogin(a, p)
	if a.OAuth() {
		d.validateApp(a, p)
	}
	if known && (a.OAuth() || a.Server != "") {
		pr.checkServer(d, a, p)
	}
	if a.TLS.CAFile != "" {
		d.caFile(p+".tls.ca_file", a.TLS.CAFile)
	}
	d.validateTimeouts(a, p+".timeouts.")
	switch {
	case a.Mailbox == "":
		d.at(p+".mailbox", "missing", fixAddress+"; the app needs access to it (Add-MailboxPermission or an Exchange RBAC role assignment)")
	default:
		d.address(p+".mailbox", a.Mailbox)
	}
	d.validateOptions(a.Options, p)
	for j, r := range a.AdditionalUsers {
		rp := p + ".additional_users[" + strconv.Itoa(j) + "]"
		if r.Address == "" {
			d.at(rp+".address", "missing", fixAddress)
		} else {
			d.address(refKey(d, rp), r.Address)
		}
		d.validateOptions(r.Options, rp)
	}
}

// validateTimeouts checks the timeouts block: each between 1s and 1h, and
// only those of a's protocol.
func (d *decoder) validateTimeouts(a *Account, p string) {
	protocol := a.Protocol
	if protocol == "" {
		protocol = "imap"
	}
	imap := protocol == "imap"
	for _, t := range []struct {
		key  string
		v    Duration
		imap bool
		all  bool
	}{{"read", a.Timeouts.Read, true, false}, {"command", a.Timeouts.Command, true, false}, {"request", a.Timeouts.Request, false, false},
		{"stall", a.Timeouts.Stall, false, true}} {
		switch {
		case t.v == 0:
		case !t.all && t.imap != imap:
			d.at(p+t.key, "is not used with protocol: "+protocol, "remove it (read and command are IMAP's, request is EWS's and Graph's)")
		case t.v.D() < time.Second || t.v.D() > time.Hour:
			d.at(p+t.key, t.v.String()+" is out of range", "write a duration between 1s and 1h, or leave it out for the default")
		}
	}
	if r, c := a.Timeouts.Read.D(), a.Timeouts.Command.D(); r > 0 && c > 0 && c < r {
		d.at(p+"command", "is shorter than timeouts.read", "a command waits at least as long as a read: make command ≥ read")
	}
	// The watchdog must not end a command or request its own timeout
	// still allows.
	eff := a.Timeouts.OrDefaults()
	longest, key := eff.Request.D(), "request"
	if imap {
		longest, key = eff.Command.D(), "command"
	}
	if st := a.Timeouts.Stall.D(); st > 0 && st <= longest {
		d.at(p+"stall", "is not longer than timeouts."+key+" ("+longest.String()+")",
			"make stall longer than one "+key+" may take, or leave it out for the default "+Duration(DefaultStallTimeout).String())
	}
}

// validateApp checks the keys of an app registration (auth: oauth).
func (d *decoder) validateApp(a *Account, p string) {
	switch {
	case a.TenantID == "":
		d.at(p+".tenant_id", "missing", fixTenant)
	case !guidPattern.MatchString(a.TenantID) && !domainPattern.MatchString(a.TenantID):
		d.at(p+".tenant_id", quoted(a.TenantID)+" is neither a GUID nor a domain name", fixTenant)
	}
	switch {
	case a.ClientID == "":
		d.at(p+".client_id", "missing", fixClient)
	case !guidPattern.MatchString(a.ClientID):
		d.at(p+".client_id", quoted(a.ClientID)+" is not a GUID", fixClient)
	}
	d.validateCredential(a, p)
	if a.Authority != "" {
		const fix = "write the identity platform's base URL, e.g. https://login.microsoftonline.com, or remove it and set cloud"
		if d.httpURL(p+".authority", a.Authority, fix) {
			d.plainHTTP(a, p, p+".authority", a.Authority, "the client secret or assertion")
		}
	} else {
		d.oneOf(p+".cloud", a.Cloud, "public", "usgov", "china")
	}
}

// validateLogin checks the keys that belong to one auth or protocol only:
// a password login needs its password and server and has no app
// registration; starttls is IMAP's, access EWS's, resource EWS OAuth's.
func (d *decoder) validateLogin(a *Account, p string) {
	set := func(keys map[string]bool) {
		for _, k := range []string{"username", "password", "password_file", "tenant_id", "client_id", "client_secret",
			"client_secret_file", "certificate", "authority", "resource"} {
			if keys[k] {
				if a.OAuth() && (k == "username" || k == "password" || k == "password_file") {
					d.at(p+"."+k, "is used only with auth: password (imap) or ntlm or basic (ews)",
						"remove it, or set auth to the way this account logs in")
				} else if !a.OAuth() && k != "username" && k != "password" && k != "password_file" {
					d.at(p+"."+k, "is not used with auth: "+a.Auth+", which logs in with username and password",
						"remove it, or set auth: oauth to use the app registration")
				}
			}
		}
	}
	set(map[string]bool{"username": a.Username != "", "password": a.Password != "" && d.has(p+".password"), "password_file": a.PasswordFile != "",
		"tenant_id": a.TenantID != "", "client_id": a.ClientID != "", "client_secret": a.ClientSecret != "" && d.has(p+".client_secret"),
		"client_secret_file": a.ClientSecretFile != "", "certificate": a.Certificate != nil, "authority": a.Authority != "",
		"resource": a.Resource != "" && !a.OAuth()})
	if !a.OAuth() {
		switch {
		case a.Password == "" && d.has(p+".password"):
			d.at(p+".password", "empty", "the value (or the environment variable it names) must not be empty")
		case a.Password == "" && a.PasswordFile == "":
			d.at(p, "auth: "+a.Auth+" needs a password", "set password: ${MAIL_PASSWORD} (from the environment) or password_file: /run/secrets/mail-password")
		}
		if a.Server == "" {
			d.at(p, "auth: "+a.Auth+" needs the server key", "write your server: host:port for imap (e.g. mail.example.org:993), the EWS URL for ews (e.g. https://mail.example.org/EWS/Exchange.asmx)")
		}
	}
	if a.StartTLS && a.Protocol != "imap" {
		d.at(p+".starttls", "is used only with protocol: imap", "remove it; "+a.Protocol+" always uses https")
	}
	switch {
	case a.Protocol == "ews":
		d.oneOf(p+".access", a.Access, AccessImpersonation, AccessDelegate)
	case a.Access != "":
		d.at(p+".access", "is used only with protocol: ews", "remove it")
	}
	if a.Resource != "" && a.OAuth() {
		const fix = "write the origin of the on-premises EWS URL registered in Entra ID, e.g. https://mail.contoso.com"
		switch {
		case a.Protocol != "ews":
			d.at(p+".resource", "is used only with protocol: ews", "remove it")
		case !strings.HasPrefix(a.Resource, "https://") || len(a.Resource) <= len("https://"):
			d.at(p+".resource", "must be an https URL", fix)
		}
	}
}

// plainHTTP refuses an http:// URL at key unless the account sets
// insecure_http, and even then unless its host is loopback: what would
// cross the network in the clear is named in carries.
func (d *decoder) plainHTTP(a *Account, p, key, v, carries string) {
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "http" {
		return
	}
	switch {
	case !httpsafe.IsLoopback(u.Hostname()):
		d.at(key, "plain http to a host that is not loopback would send "+carries+" unencrypted",
			"use https:// (insecure_http allows http only to 127.0.0.1, ::1 or localhost, for tests)")
	case !a.InsecureHTTP:
		d.at(key, "plain http would send "+carries+" unencrypted",
			"use https://; only for a test server on this machine, set insecure_http: true on the account ("+p+".insecure_http)")
	}
}

// refKey is the key path of an additional_users entry's address: the entry
// itself for the plain-string form, its address key for the mapping form.
func refKey(d *decoder, rp string) string {
	if _, ok := d.lines[rp+".address"]; ok {
		return rp + ".address"
	}
	return rp
}

func (d *decoder) address(key, v string) {
	a, err := mail.ParseAddress(v)
	if err != nil || a.Name != "" || !strings.EqualFold(a.Address, strings.TrimSpace(v)) || strings.ContainsAny(v, " \t<>") {
		d.at(key, quoted(v)+" is not an email address", fixAddress)
		return
	}
	if !validToken(Token(v)) {
		d.at(key, quoted(v)+" cannot be part of a NATS subject", "addresses with *, > or white space are not supported")
	}
}

func (d *decoder) validateCredential(a *Account, p string) {
	var set []string
	if a.ClientSecret != "" || a.ClientSecretFile != "" {
		if a.ClientSecretFile != "" {
			set = append(set, "client_secret_file")
		} else {
			set = append(set, "client_secret")
		}
	}
	if a.Certificate != nil {
		set = append(set, "certificate")
	}
	if a.FederatedTokenFile != "" {
		set = append(set, "federated_token_file")
	}
	switch {
	case len(set) == 0:
		if d.has(p + ".client_secret") {
			d.at(p+".client_secret", "empty", "the value (or the environment variable it names) must not be empty; "+fixCredential)
		} else {
			d.at(p, "no credential", fixCredential)
		}
	case len(set) > 1:
		d.at(p+"."+set[1], strings.Join(set, " and ")+" are both set", fixCredential)
	}
	if c := a.Certificate; c != nil {
		const fix = "point it at the PEM file of the certificate uploaded under Certificates & secrets > Certificates " +
			"(and its private key); if one PEM holds both, give its path for cert_file and key_file"
		for _, f := range []struct{ key, path string }{{"cert_file", c.CertFile}, {"key_file", c.KeyFile}} {
			k := p + ".certificate." + f.key
			if f.path == "" {
				d.at(k, "missing", fix)
			} else {
				d.fileExists(k, f.path, fix)
			}
		}
	}
}

// validateMailboxes checks what only the merged view shows: two mailboxes on
// one subject, and after_read: move without move_to.
func (d *decoder) validateMailboxes(c *Config) {
	subjects := map[string]string{}
	reported := map[string]bool{}
	base := c.Defaults
	for i := range c.Accounts {
		a := &c.Accounts[i]
		p := accountPath(i)
		acct := base.merge(a.Options)
		check := func(key, addr string, o Options, levels []string) {
			d.movedIntoPolled(o, levels)
			if addr != "" && a.Name != "" {
				subj := c.NATS.SubjectPrefix + "." + a.Name + "." + Token(strings.TrimSpace(addr))
				if first, ok := subjects[subj]; ok {
					d.at(key, fmt.Sprintf("publishes on the same subject %s as %s (line %d)", subj, first, d.lineOf(first)),
						"list each mailbox once; addresses that differ only in . and _ share a subject, so put one of them under another account")
				} else {
					subjects[subj] = key
				}
			}
			if o.AfterRead != nil && *o.AfterRead == "move" && (o.MoveTo == nil || strings.TrimSpace(*o.MoveTo) == "") {
				// Blame the most specific level that chose after_read or move_to.
				at := "defaults.after_read"
			levels:
				for _, l := range append(levels, "defaults") {
					for _, k := range []string{".after_read", ".move_to"} {
						if d.has(l + k) {
							at = l + k
							break levels
						}
					}
				}
				if !reported[at] {
					reported[at] = true
					d.at(at, "move needs move_to", "set move_to to the folder read mail goes to (e.g. Processed), or choose mark_read, delete or none")
				}
			}
		}
		check(p+".mailbox", a.Mailbox, acct, []string{p})
		for j, r := range a.AdditionalUsers {
			rp := p + ".additional_users[" + strconv.Itoa(j) + "]"
			check(refKey(d, rp), r.Address, acct.merge(r.Options), []string{rp, p})
		}
	}
}

// movedIntoPolled refuses after_read: move (or quarantine) into a folder
// the same mailbox polls: the moved mail would be read there again, as a
// new event.
func (d *decoder) movedIntoPolled(o Options, levels []string) {
	polled := o.Folders
	if len(polled) == 0 && o.Folder != nil {
		polled = []string{*o.Folder}
	}
	for _, f := range polled {
		for _, t := range []struct {
			key    string
			target *string
			on     bool
		}{{"move_to", o.MoveTo, o.AfterRead != nil && *o.AfterRead == "move"}, {"quarantine", o.Quarantine, true}} {
			if !t.on || t.target == nil || strings.TrimSpace(*t.target) == "" || strings.TrimSpace(f) == "" || !strings.EqualFold(strings.Trim(*t.target, "/ "), strings.Trim(f, "/ ")) {
				continue
			}
			at := levels[len(levels)-1] + "." + t.key
			for _, l := range append(levels, "defaults") {
				if d.has(l + "." + t.key) {
					at = l + "." + t.key
					break
				}
			}
			d.at(at, quoted(*t.target)+" is a folder this mailbox polls", "choose a folder that is not in folder or folders, or mail moved there is read again as a new event")
		}
	}
}
