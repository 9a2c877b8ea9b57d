package config

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/mailpoller/mailpoller/internal/httpsafe"

	"github.com/mailpoller/mailpoller/source"
)

var (
	namePattern   = regexp.MustCompile(`^[a-z0-9_-]+$`)
	guidPattern   = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	domainPattern = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$`)
)

// Fix texts shared by several checks.
const (
	fixTenant = "set it to the Directory (tenant) ID GUID from the app registration's Overview page " +
		"(Entra admin center > App registrations > your app > Overview), or to a verified domain such as contoso.onmicrosoft.com"
	fixClient = "set it to the Application (client) ID GUID from the app registration's Overview page " +
		"(Entra admin center > App registrations > your app > Overview)"
	fixCredential = "set exactly one of client_secret (best as ${ENV}), client_secret_file, certificate {cert_file, key_file} " +
		"or federated_token_file; with none set, mailpoller uses $" + FederatedTokenEnv + " (Azure Workload Identity) when it is set"
	fixAddress = "write the mailbox's primary SMTP address, e.g. support@contoso.com"
)

func quoted(s string) string { return strconv.Quote(s) }

// oneOf checks that v is one of valid.
func (d *decoder) oneOf(key, v string, valid ...string) {
	if !slices.Contains(valid, v) {
		d.at(key, quoted(v)+" is not valid", "use one of: "+strings.Join(valid, ", "))
	}
}

// fileExists checks that a file named by the config can be opened.
func (d *decoder) fileExists(key, path, fix string) bool {
	if err := regularFile(path); err != nil {
		d.at(key, fileProblem(path, err), fix)
		return false
	}
	return true
}

// caFile checks that path holds at least one PEM certificate.
func (d *decoder) caFile(key, path string) {
	const fix = "point it at a PEM file with the CA certificate(s) that signed the server's certificate"
	data, err := readSmallFile(path, maxCAFile)
	if err != nil {
		d.at(key, fileProblem(path, err), fix)
		return
	}
	if !x509.NewCertPool().AppendCertsFromPEM(data) {
		d.at(key, "file "+path+" holds no PEM certificate", fix)
	}
}

// hostPort checks a listen or dial address "host:port" (port 0..65535, or
// -1 when allowNeg).
func (d *decoder) hostPort(key, v, fix string, allowNeg bool) {
	_, port, err := net.SplitHostPort(v)
	p, perr := strconv.Atoi(port)
	if err != nil || perr != nil || p > 65535 || p < 0 && !(allowNeg && p == -1) {
		d.at(key, quoted(v)+" is not host:port", fix)
	}
}

// httpURL checks an http(s) URL with a host and reports whether it is one.
// URLs are not echoed: they may carry credentials.
func (d *decoder) httpURL(key, v, fix string) bool {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		d.at(key, "not an http:// or https:// URL", fix)
		return false
	}
	return true
}

func (d *decoder) validate(c *Config) {
	d.validateNATS(&c.NATS)
	if c.HTTP.Listen != "" {
		d.hostPort("http.listen", c.HTTP.Listen, `write host:port such as "127.0.0.1:9464" (":0" picks a free port), or "" to turn the endpoint off`, false)
	}
	if u := c.Graph.NotificationsURL; u != "" {
		d.notificationsURL(u, c.HTTP.Listen)
	}
	d.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	d.oneOf("log.format", c.Log.Format, "text", "json")
	d.validateOptions(c.Defaults, "defaults")
	if len(c.Accounts) == 0 {
		d.at("accounts", "no accounts", "add at least one entry under accounts: with name, tenant_id, client_id, a credential and mailbox")
	}
	names := map[string]int{}
	for i := range c.Accounts {
		p := accountPath(i)
		d.validateAccount(&c.Accounts[i], p)
		name := c.Accounts[i].Name
		if first, ok := names[name]; ok && name != "" {
			fp := accountPath(first)
			d.at(p+".name", fmt.Sprintf("%s is already used by %s (line %d)", quoted(name), fp, d.lineOf(fp+".name")),
				"give every account its own name; it is part of the NATS subject")
		} else {
			names[name] = i
		}
	}
	d.validateMailboxes(c)
}

func (d *decoder) validateNATS(n *NATS) {
	if n.URL != "" {
		for _, u := range strings.Split(n.URL, ",") {
			if !validNATSURL(strings.TrimSpace(u)) {
				d.at("nats.url", "not a NATS server URL list", `write nats://host:4222 (or tls://, ws://, wss://), several separated by commas, or "" for the embedded server`)
				break
			}
		}
	}
	methods := 0
	for _, set := range []bool{n.CredentialsFile != "", n.User != "", n.Token != "" || n.TokenFile != ""} {
		if set {
			methods++
		}
	}
	if methods > 1 {
		d.at("nats", "more than one of credentials_file, user/password and token is set", "keep the one way of logging in that your NATS server expects")
	}
	if (n.Password != "" || n.PasswordFile != "") && n.User == "" {
		d.at("nats.password", "password without user", "set nats.user as well")
	}
	if n.CredentialsFile != "" {
		d.fileExists("nats.credentials_file", n.CredentialsFile, "point it at the .creds file (JWT and NKey seed) issued for this client")
	}
	if n.TLS.CAFile != "" {
		d.caFile("nats.tls.ca_file", n.TLS.CAFile)
	}
	if strings.ContainsAny(n.Stream, " \t\r\n.*>/\\") {
		d.at("nats.stream", quoted(n.Stream)+" is not a valid stream name", "use letters, digits, - and _ only, e.g. MAIL")
	}
	if !validSubject(n.SubjectPrefix) {
		d.at("nats.subject_prefix", quoted(n.SubjectPrefix)+" is not a valid NATS subject",
			"use dot-separated tokens without spaces, * or >, e.g. mail.inbound")
	}
	d.validateRetention(n.Retention)
	if n.URL == "" && !strings.EqualFold(n.Embedded.Listen, "none") {
		d.hostPort("nats.embedded.listen", n.Embedded.Listen, `write host:port such as "127.0.0.1:4222" (port 0 picks a free port), or none for no TCP port at all`, true)
	}
}

// validateRetention checks nats.retention (defaults applied): no negative
// limits, and blobs kept at least as long as the events that point at them.
func (d *decoder) validateRetention(r Retention) {
	const p = "nats.retention."
	if r.EventsMaxAge < 0 {
		d.at(p+"events_max_age", r.EventsMaxAge.String()+" is negative", "write a duration such as 720h, or 0s for no limit")
	}
	if r.BlobsMaxAge < 0 {
		d.at(p+"blobs_max_age", r.BlobsMaxAge.String()+" is negative", "write a duration such as 1440h, or 0s for no limit")
	}
	if r.EventsMaxAge < 0 || r.BlobsMaxAge < 0 {
		return
	}
	ev, bl := r.EventsMaxAge.D(), r.BlobsMaxAge.D()
	if bl != 0 && (ev == 0 || bl < ev) {
		evs := "0s (for ever)"
		if ev != 0 {
			evs = ev.String()
		}
		d.at(p+"blobs_max_age", "blobs would expire before the events that point at them (blobs_max_age "+bl.String()+", events_max_age "+evs+")",
			"make blobs_max_age at least events_max_age (twice it is the default), or 0s to keep blobs for ever")
	}
}

func validNATSURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return false
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
		return true
	}
	return false
}

// validSubject reports whether s is a literal NATS subject: non-empty
// dot-separated tokens without whitespace or wildcards.
func validSubject(s string) bool {
	if s == "" {
		return false
	}
	for _, tok := range strings.Split(s, ".") {
		if !validToken(tok) {
			return false
		}
	}
	return true
}

func validToken(t string) bool {
	return t != "" && !strings.ContainsAny(t, " \t\r\n\f\v.*>") && !strings.ContainsRune(t, 0)
}

func (d *decoder) validateOptions(o Options, p string) {
	if o.PollInterval != nil && o.PollInterval.D() < 1e9 {
		d.at(p+".poll_interval", o.PollInterval.String()+" is too short", "use at least 1s; 30s to 5m suits Exchange Online")
	}
	if o.Folder != nil && strings.TrimSpace(*o.Folder) == "" {
		d.at(p+".folder", "empty", "name the folder to read, e.g. INBOX")
	}
	if o.Folders != nil || d.has(p+".folders") {
		seen := map[string]bool{}
		switch {
		case o.Folder != nil:
			d.at(p+".folders", "folder and folders are both set", "keep one: folder for one folder, folders for several")
		case len(o.Folders) == 0:
			d.at(p+".folders", "empty", "list the folders to read, e.g. [INBOX, Inbox/Support], or remove the key")
		}
		for i, f := range o.Folders {
			k := p + ".folders[" + strconv.Itoa(i) + "]"
			switch f = strings.ToLower(strings.TrimSpace(f)); {
			case f == "":
				d.at(k, "empty", "name the folder to read, e.g. Inbox/Support")
			case seen[f]:
				d.at(k, quoted(o.Folders[i])+" is listed twice", "list each folder once")
			}
			seen[f] = true
		}
	}
	if o.StartFrom != nil {
		d.oneOf(p+".start_from", *o.StartFrom, string(source.StartUnread), string(source.StartAll), string(source.StartNow))
	}
	if o.AfterRead != nil {
		d.oneOf(p+".after_read", *o.AfterRead, string(source.MarkRead), string(source.Move), string(source.Delete), string(source.None))
	}
	if o.StoreRaw != nil {
		d.oneOf(p+".store_raw", *o.StoreRaw, string(source.RawAlways), string(source.RawOnProblems), string(source.RawNever))
	}
	if o.MaxMessageBytes != nil && *o.MaxMessageBytes <= 0 {
		d.at(p+".max_message_bytes", "must be more than 0", `write a size such as "50MiB"`)
	}
}

// notificationsURL checks graph.notifications_url: Microsoft Graph posts
// only to https, and the notifications are served on http.listen, which
// must be on.
func (d *decoder) notificationsURL(v, listen string) {
	const key = "graph.notifications_url"
	const fix = "write the public https URL your reverse proxy forwards to http://<http.listen>/graph/notifications, e.g. https://mailpoller.contoso.com/graph/notifications"
	if !d.httpURL(key, v, fix) {
		return
	}
	if u, _ := url.Parse(v); u.Scheme != "https" && !httpsafe.IsLoopback(u.Hostname()) {
		d.at(key, "Microsoft Graph sends notifications only to https", fix)
	}
	if listen == "" {
		d.at(key, "needs the http endpoint, which http.listen turns off", "set http.listen (e.g. 127.0.0.1:9464) and forward the public URL to its /graph/notifications path")
	}
}
