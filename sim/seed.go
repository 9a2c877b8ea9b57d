package sim

import (
	"crypto/subtle"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Seed is the simulator's starting state.
type Seed struct {
	Tenants   []Tenant      `yaml:"tenants"`
	Apps      []App         `yaml:"apps"`
	Users     []User        `yaml:"users"`
	Mailboxes []MailboxSeed `yaml:"mailboxes"`
	// Hybrid, an origin such as https://mail.contoso.test, makes EWS play
	// an Exchange Server set up for hybrid modern auth: the token endpoint
	// issues tokens for that resource, with the apps' Exchange roles (hybrid
	// adds the on-premises URL to Exchange Online's service principal), and
	// EWS takes only tokens for it.
	Hybrid string `yaml:"hybrid"`
}

// User is a login with a password, as on-premises Exchange and other IMAP
// servers have them: Basic or NTLM over EWS, LOGIN or PLAIN over IMAP. It
// opens its own mailbox (the one at its Login address, if any) and those
// in Mailboxes (FullAccess, "*": every mailbox of the simulator), and may
// impersonate any mailbox when Impersonation is set (the
// ApplicationImpersonation role).
type User struct {
	Login         string   `yaml:"login"`  // user@domain
	Domain        string   `yaml:"domain"` // NetBIOS domain for DOMAIN\user and NTLM, e.g. CONTOSO
	Password      string   `yaml:"password"`
	Mailboxes     []string `yaml:"mailboxes"`
	Impersonation bool     `yaml:"impersonation"`
}

// Opens reports whether u may open mailbox: its own, or one it has
// FullAccess on.
func (u *User) Opens(mailbox string) bool {
	if strings.EqualFold(u.Login, mailbox) {
		return true
	}
	for _, m := range u.Mailboxes {
		if m == "*" || strings.EqualFold(m, mailbox) {
			return true
		}
	}
	return false
}

// Tenant is an Entra tenant; its mailboxes are the addresses in Domain.
type Tenant struct {
	ID     string `yaml:"id"`
	Domain string `yaml:"domain"`
}

// App is an app registration with its secret, the application permissions
// admin-consented to it on each resource, and the mailboxes it has
// FullAccess on ("*": all of its tenant). A token carries the roles of the
// resource its scope names: Roles for Exchange Online
// (https://outlook.office365.com/.default, e.g. IMAP.AccessAsApp,
// full_access_as_app), GraphRoles for Microsoft Graph
// (https://graph.microsoft.com/.default, e.g. Mail.ReadWrite).
type App struct {
	Tenant        string   `yaml:"tenant"`
	ClientID      string   `yaml:"client_id"`
	Secret        string   `yaml:"secret"`
	SecretExpired bool     `yaml:"secret_expired"`
	Roles         []string `yaml:"roles"`
	GraphRoles    []string `yaml:"graph_roles"`
	Mailboxes     []string `yaml:"mailboxes"`
	// Certificate is the PEM certificate uploaded to the app registration;
	// client assertions signed with its key are accepted (CertificateFile
	// names a PEM file instead, in seed files).
	Certificate     []byte `yaml:"-"`
	CertificateFile string `yaml:"certificate_file"`

	objectID string // the service principal's object id (oid claim)
}

// MailboxSeed is a mailbox with extra folders and initial mail: every .eml
// file of MailDir, then Generate generated messages.
type MailboxSeed struct {
	Address  string   `yaml:"address"`
	Folders  []string `yaml:"folders"`
	MailDir  string   `yaml:"mail_dir"`
	Generate int      `yaml:"generate"`
}

// LoadSeed reads a seed file.
func LoadSeed(path string) (*Seed, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read seed: %w", err)
	}
	var s Seed
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("seed %s: %w", path, err)
	}
	for i := range s.Mailboxes {
		if d := s.Mailboxes[i].MailDir; d != "" && !filepath.IsAbs(d) {
			s.Mailboxes[i].MailDir = filepath.Join(filepath.Dir(path), d)
		}
	}
	return &s, nil
}

// Generate makes a simple test message number n for a mailbox.
func Generate(to string, n int) []byte {
	return []byte(fmt.Sprintf("From: Sender %d <sender%d@example.net>\r\nTo: <%s>\r\nSubject: Generated message %d\r\n"+
		"Date: %s\r\nMessage-ID: <gen-%d-%s>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"+
		"This is generated message %d for %s.\r\n", n, n, to, n, time.Now().UTC().Format(time.RFC1123Z), n, strings.ReplaceAll(to, "@", ".at."), n, to))
}

// directory is the simulated Entra directory: tenants and app
// registrations, as the seed gave them. It is read-only once built.
type directory struct {
	tenants []Tenant
	apps    []App
	users   []User
	hybrid  string // Seed.Hybrid, lower case without a trailing slash
}

// roles is how an app's roles on resource are found; nil for a resource
// the tenants do not have.
func (d *directory) roles(resource string) func(*App) []string {
	if d.hybrid != "" && resource == d.hybrid {
		return resourceRoles[exchangeResource]
	}
	return resourceRoles[resource]
}

// ewsAudience is the audience EWS takes tokens for.
func (d *directory) ewsAudience() string {
	if d.hybrid != "" {
		return d.hybrid
	}
	return exchangeResource
}

// user is the seeded user that name names: its login (user@domain,
// case-insensitive), DOMAIN\user, or the part before @ of its login;
// nil when there is none.
func (d *directory) user(name string) *User {
	for i := range d.users {
		u := &d.users[i]
		local, _, _ := strings.Cut(u.Login, "@")
		dom, rest, hasDom := strings.Cut(name, `\`)
		switch {
		case strings.EqualFold(name, u.Login), !hasDom && strings.EqualFold(name, local):
			return u
		case hasDom && strings.EqualFold(dom, u.Domain) && (strings.EqualFold(rest, local) || strings.EqualFold(rest, u.Login)):
			return u
		}
	}
	return nil
}

// login is the seeded user name names whose password is password, or nil.
func (d *directory) login(name, password string) *User {
	u := d.user(name)
	if u == nil || u.Password == "" || subtle.ConstantTimeCompare([]byte(u.Password), []byte(password)) != 1 {
		return nil
	}
	return u
}

// hasPasswords reports whether some seeded user has a password.
func (d *directory) hasPasswords() bool {
	return slices.ContainsFunc(d.users, func(u User) bool { return u.Password != "" })
}

// newDirectory gives every app a service principal object id and reads
// the certificate files the seed names.
func newDirectory(seed *Seed) (*directory, error) {
	d := &directory{tenants: slices.Clone(seed.Tenants), apps: slices.Clone(seed.Apps), users: slices.Clone(seed.Users),
		hybrid: strings.ToLower(strings.TrimSuffix(seed.Hybrid, "/"))}
	for i := range d.apps {
		d.apps[i].objectID = uuid()
		if f := d.apps[i].CertificateFile; f != "" && d.apps[i].Certificate == nil {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("seed: app %s certificate: %w", d.apps[i].ClientID, err)
			}
			d.apps[i].Certificate = b
		}
	}
	return d, nil
}

func (d *directory) app(clientID string) *App {
	for i := range d.apps {
		if strings.EqualFold(d.apps[i].ClientID, clientID) {
			return &d.apps[i]
		}
	}
	return nil
}

// tenantID resolves a tenant GUID or domain to the GUID.
func (d *directory) tenantID(t string) string {
	for _, x := range d.tenants {
		if strings.EqualFold(x.ID, t) || strings.EqualFold(x.Domain, t) {
			return x.ID
		}
	}
	return ""
}

// tenantOf is the tenant whose domain holds mailbox.
func (d *directory) tenantOf(mailbox string) string {
	_, domain, _ := strings.Cut(strings.ToLower(mailbox), "@")
	for _, x := range d.tenants {
		if strings.EqualFold(x.Domain, domain) {
			return x.ID
		}
	}
	return ""
}

// allowed reports whether the token's app holds role and may open mailbox
// of st.
func (d *directory) allowed(c *Claims, role, mailbox string, st *Store) bool {
	if c == nil || !slices.Contains(c.Roles, role) {
		return false
	}
	app := d.app(c.AppID)
	if app == nil || app.Tenant != c.Tenant {
		return false
	}
	mailbox = strings.ToLower(mailbox)
	if !st.HasMailbox(mailbox) || d.tenantOf(mailbox) != app.Tenant {
		return false
	}
	return slices.ContainsFunc(app.Mailboxes, func(m string) bool { return m == "*" || strings.EqualFold(m, mailbox) })
}

// fill creates the seed's mailboxes, folders and mail in st.
func (d *directory) fill(st *Store, seed *Seed) error {
	for _, mb := range seed.Mailboxes {
		if d.tenantOf(mb.Address) == "" {
			return fmt.Errorf("seed: mailbox %s is in no tenant's domain", mb.Address)
		}
		st.AddMailbox(mb.Address)
		for _, f := range mb.Folders {
			if err := st.CreateFolder(mb.Address, f); err != nil {
				return fmt.Errorf("seed: %w", err)
			}
		}
		if mb.MailDir != "" {
			files, err := filepath.Glob(filepath.Join(mb.MailDir, "*.eml"))
			if err != nil {
				return fmt.Errorf("seed: mailbox %s: %w", mb.Address, err)
			}
			for _, f := range files {
				raw, err := os.ReadFile(f)
				if err != nil {
					return fmt.Errorf("seed: %w", err)
				}
				st.Deliver(mb.Address, "INBOX", raw, time.Time{})
			}
		}
		for i := 1; i <= mb.Generate; i++ {
			st.Deliver(mb.Address, "INBOX", Generate(mb.Address, i), time.Time{})
		}
	}
	return nil
}
