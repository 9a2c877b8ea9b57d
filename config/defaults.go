package config

import (
	"strconv"
	"strings"

	"github.com/mailpoller/mailpoller/source"
)

// Defaults for keys the file leaves out.
const (
	DefaultStream          = "MAIL"
	DefaultSubjectPrefix   = "mail.inbound"
	DefaultEmbeddedListen  = "127.0.0.1:4222"
	DefaultStoreDir        = "./data/nats"
	DefaultHTTPListen      = "127.0.0.1:9464"
	DefaultLogLevel        = "info"
	DefaultLogFormat       = "text"
	DefaultPollInterval    = source.DefaultPollInterval
	DefaultFolder          = source.DefaultFolder
	DefaultStartFrom       = string(source.DefaultStartFrom)
	DefaultAfterRead       = string(source.DefaultAfterRead)
	DefaultMaxMessageBytes = source.DefaultMaxMessageBytes
	DefaultStoreRaw        = string(source.DefaultStoreRaw)
	DefaultProtocol        = "imap"
	DefaultCloud           = "public"
	DefaultIMAPServer      = "outlook.office365.com:993"
	DefaultEWSServer       = "https://outlook.office365.com/EWS/Exchange.asmx"
	DefaultGraphServer     = "https://graph.microsoft.com/v1.0"
)

// Values of an EWS account's access key.
const (
	AccessImpersonation = "impersonation" // ExchangeImpersonation of each mailbox (ApplicationImpersonation role)
	AccessDelegate      = "delegate"      // the login opens each mailbox it has FullAccess to
)

// FederatedTokenEnv is the environment variable (set by the Azure Workload
// Identity webhook) whose value becomes an account's federated_token_file when
// the account names no credential at all.
const FederatedTokenEnv = "AZURE_FEDERATED_TOKEN_FILE"

func accountPath(i int) string { return "accounts[" + strconv.Itoa(i) + "]" }

func setDefault(s *string, v string) {
	if *s == "" {
		*s = v
	}
}

// applyDefaults fills every key the file left out.
func (d *decoder) applyDefaults(c *Config) {
	n := &c.NATS
	setDefault(&n.Stream, DefaultStream)
	setDefault(&n.SubjectPrefix, DefaultSubjectPrefix)
	setDefault(&n.Embedded.Listen, DefaultEmbeddedListen)
	setDefault(&n.Embedded.StoreDir, DefaultStoreDir)
	if !d.has("nats.retention.events_max_age") {
		n.Retention.EventsMaxAge = Duration(DefaultEventsMaxAge)
	}
	if !d.has("nats.retention.blobs_max_age") {
		n.Retention.BlobsMaxAge = DefaultBlobsFactor * n.Retention.EventsMaxAge
	}
	// An explicit listen: "" turns the endpoint off; only a missing one gets the default.
	if !d.has("http.listen") {
		c.HTTP.Listen = DefaultHTTPListen
	}
	setDefault(&c.Log.Level, DefaultLogLevel)
	setDefault(&c.Log.Format, DefaultLogFormat)
	c.Defaults = builtinOptions().merge(c.Defaults)
	for i := range c.Accounts {
		a := &c.Accounts[i]
		setDefault(&a.Protocol, DefaultProtocol)
		setDefault(&a.Cloud, DefaultCloud)
		setDefault(&a.Auth, AuthOAuth)
		if pr, ok := protocolNamed(a.Protocol); ok && a.OAuth() {
			setDefault(&a.Server, pr.defaultServer)
		}
		if a.Protocol == "ews" {
			setDefault(&a.Access, AccessImpersonation)
		}
		if a.OAuth() && a.ClientSecret == "" && a.ClientSecretFile == "" && a.Certificate == nil && a.FederatedTokenFile == "" {
			if f, ok := d.lookup(FederatedTokenEnv); ok && f != "" {
				a.FederatedTokenFile = f
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }

// builtinOptions are the defaults of every Options field.
func builtinOptions() Options {
	return Options{
		PollInterval:    ptr(Duration(DefaultPollInterval)),
		Folder:          ptr(DefaultFolder),
		StartFrom:       ptr(DefaultStartFrom),
		AfterRead:       ptr(DefaultAfterRead),
		MoveTo:          ptr(""),
		Quarantine:      ptr(""),
		MaxMessageBytes: ptr(ByteSize(DefaultMaxMessageBytes)),
		StoreRaw:        ptr(DefaultStoreRaw),
	}
}

// merge returns o with every field that over sets replaced by over's value.
func (o Options) merge(over Options) Options {
	if over.PollInterval != nil {
		o.PollInterval = over.PollInterval
	}
	if over.Folder != nil {
		o.Folder, o.Folders = over.Folder, nil
	}
	if over.Folders != nil {
		o.Folders = over.Folders
	}
	if over.StartFrom != nil {
		o.StartFrom = over.StartFrom
	}
	if over.AfterRead != nil {
		o.AfterRead = over.AfterRead
	}
	if over.MoveTo != nil {
		o.MoveTo = over.MoveTo
	}
	if over.Quarantine != nil {
		o.Quarantine = over.Quarantine
	}
	if over.MaxMessageBytes != nil {
		o.MaxMessageBytes = over.MaxMessageBytes
	}
	if over.StoreRaw != nil {
		o.StoreRaw = over.StoreRaw
	}
	return o
}

// Mailboxes returns every (account, mailbox, folder) of c in file order:
// for each account its mailbox first, then its additional_users in order,
// and a mailbox with folders once per folder in their order. Options
// are merged built-in defaults → defaults → account → mailbox entry, and
// addresses are lower-cased. Account points into c.Accounts. It does no I/O
// and works on configs built in code as well as loaded ones.
func (c *Config) Mailboxes() []Mailbox {
	var out []Mailbox
	base := builtinOptions().merge(c.Defaults)
	for i := range c.Accounts {
		a := &c.Accounts[i]
		acct := base.merge(a.Options)
		out = append(out, resolved(a, a.Mailbox, acct)...)
		for _, r := range a.AdditionalUsers {
			out = append(out, resolved(a, r.Address, acct.merge(r.Options))...)
		}
	}
	return out
}

// resolved is address's Mailbox with options o: one per folder when o
// lists folders.
func resolved(a *Account, address string, o Options) []Mailbox {
	if len(o.Folders) == 0 {
		return []Mailbox{inFolder(a, address, o, *o.Folder)}
	}
	out := make([]Mailbox, len(o.Folders))
	for i, f := range o.Folders {
		out[i] = inFolder(a, address, o, f)
	}
	return out
}

func inFolder(a *Account, address string, o Options, folder string) Mailbox {
	return Mailbox{Account: a, Mailbox: source.Mailbox{
		Address:         strings.ToLower(strings.TrimSpace(address)),
		PollInterval:    o.PollInterval.D(),
		Folder:          folder,
		StartFrom:       source.StartFrom(*o.StartFrom),
		AfterRead:       source.AfterRead(*o.AfterRead),
		MoveTo:          *o.MoveTo,
		Quarantine:      *o.Quarantine,
		MaxMessageBytes: int64(*o.MaxMessageBytes),
		StoreRaw:        source.StoreRaw(*o.StoreRaw),
	}}
}
