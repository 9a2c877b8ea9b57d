// Package config owns mailpoller's YAML configuration: the types that map the
// file (DESIGN.md §3), their defaults, ${ENV} and *_file secret expansion, and
// validation that reports every problem with file, line, key and fix.
//
// Load reads the config file and hands its bytes to Parse; Parse also reads
// the files the config names (secret files, CA bundles, certificates are
// checked) and the environment. Everything else is pure.
//
// Problems come back all at once as *Errors, one Error per problem with line,
// key path and a fix. Secret values (client_secret, nats.password,
// nats.token and the contents of their *_file files) never appear in an
// error, and Account and NATS print and log without them.
package config

import (
	"strings"
	"time"

	"github.com/mailpoller/mailpoller/source"
)

// Config is a whole mailpoller configuration file.
type Config struct {
	NATS     NATS      `yaml:"nats"`
	HTTP     HTTP      `yaml:"http"`
	Graph    Graph     `yaml:"graph"`
	Log      Log       `yaml:"log"`
	Defaults Options   `yaml:"defaults"`
	Accounts []Account `yaml:"accounts"`

	// Path is the file the config was loaded from ("" when built in code).
	Path string `yaml:"-"`
}

// NATS says where events go. An empty URL starts an embedded server.
type NATS struct {
	URL             string    `yaml:"url"`
	Embedded        Embedded  `yaml:"embedded"`
	CredentialsFile string    `yaml:"credentials_file"`
	User            string    `yaml:"user"`
	Password        string    `yaml:"password" secret:"true"` // secret: ${ENV} or password_file; Load fills it from PasswordFile
	PasswordFile    string    `yaml:"password_file"`
	Token           string    `yaml:"token" secret:"true"` // secret: ${ENV} or token_file; Load fills it from TokenFile
	TokenFile       string    `yaml:"token_file"`
	TLS             TLS       `yaml:"tls"`
	Stream          string    `yaml:"stream"`         // default MAIL
	SubjectPrefix   string    `yaml:"subject_prefix"` // default mail.inbound
	Retention       Retention `yaml:"retention"`
}

// Defaults of nats.retention, applied by Load to keys the file leaves out.
// A blob is kept twice as long as events by default: a blob is stored once
// and shared by every later event with the same content, so one stored up
// to events_max_age before such an event still outlives it.
const (
	DefaultEventsMaxAge = 30 * 24 * time.Hour
	DefaultBlobsFactor  = 2 // blobs_max_age, when left out, is this times events_max_age
)

// Retention bounds what the events stream and the blob object store keep;
// JetStream drops the oldest first. An age or a size of 0 means no limit
// (so a Retention built in code, not loaded, limits nothing).
type Retention struct {
	EventsMaxAge   Duration `yaml:"events_max_age"`   // default 720h (30 days)
	EventsMaxBytes ByteSize `yaml:"events_max_bytes"` // default 0: no limit
	BlobsMaxAge    Duration `yaml:"blobs_max_age"`    // default twice events_max_age (0s when that is 0s)
	BlobsMaxBytes  ByteSize `yaml:"blobs_max_bytes"`  // default 0: no limit
}

// Embedded configures the NATS server started when NATS.URL is empty.
type Embedded struct {
	Listen   string `yaml:"listen"`    // default 127.0.0.1:4222; port 0 (or -1) picks a free port; "none": no TCP port, in-process only
	StoreDir string `yaml:"store_dir"` // default ./data/nats
}

// HTTP configures the operations endpoint (/metrics, /healthz, /readyz, /status).
type HTTP struct {
	Listen string `yaml:"listen"` // default 127.0.0.1:9464 when the key is absent; an explicit "" disables
}

// Graph configures what the Microsoft Graph transport shares across
// accounts: change notifications.
type Graph struct {
	// NotificationsURL is the public https URL at which Microsoft Graph
	// reaches this process's http.listen path /graph/notifications (through
	// a reverse proxy or ingress). When set, every Graph mailbox subscribes
	// to new mail in its folder and a notification starts its delta sync at
	// once; the poll at poll_interval stays as the safety net. Empty: poll
	// only.
	NotificationsURL string `yaml:"notifications_url"`
}

// Log configures log/slog output.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error; default info
	Format string `yaml:"format"` // text | json; default text
}

// TLS configures certificate checks for one peer.
type TLS struct {
	CAFile             string `yaml:"ca_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Certificate is a client certificate credential for an app registration.
type Certificate struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Options are the per-mailbox knobs. In the file they appear under defaults,
// on an account and on a mailbox entry; nil fields inherit from the level above.
type Options struct {
	PollInterval    *Duration `yaml:"poll_interval"`     // default 60s
	Folder          *string   `yaml:"folder"`            // default INBOX
	Folders         []string  `yaml:"folders,omitempty"` // several folders, each polled on its own; replaces folder at its level
	StartFrom       *string   `yaml:"start_from"`        // unread | all | now; default unread
	AfterRead       *string   `yaml:"after_read"`        // mark_read | move | delete | none; default mark_read
	MoveTo          *string   `yaml:"move_to"`           // folder for after_read: move
	Quarantine      *string   `yaml:"quarantine"`        // folder for dead-lettered mail; "" leaves it in place
	MaxMessageBytes *ByteSize `yaml:"max_message_bytes"` // default 50MiB
	StoreRaw        *string   `yaml:"store_raw"`         // always | on_problems | never; default always
}

// Account is one Entra ID app registration and the mailboxes it reads.
type Account struct {
	Name               string       `yaml:"name"`
	Protocol           string       `yaml:"protocol"`               // imap | ews | graph; default imap
	Auth               string       `yaml:"auth"`                   // oauth (all) | password (imap) | ntlm, basic (ews); default oauth
	Username           string       `yaml:"username"`               // password, ntlm, basic: the login (ntlm: user@domain or DOMAIN\user); default the mailbox
	Password           string       `yaml:"password" secret:"true"` // password, ntlm, basic; Load fills it from PasswordFile
	PasswordFile       string       `yaml:"password_file"`
	StartTLS           bool         `yaml:"starttls"` // imap: connect in the clear and upgrade with STARTTLS (port 143); refused when not offered
	Access             string       `yaml:"access"`   // ews: impersonation | delegate; default impersonation
	Resource           string       `yaml:"resource"` // ews with oauth: the resource of the token (hybrid: the on-premises EWS URL's origin); default Exchange Online
	TenantID           string       `yaml:"tenant_id"`
	ClientID           string       `yaml:"client_id"`
	ClientSecret       string       `yaml:"client_secret" secret:"true"` // Load fills it from ClientSecretFile
	ClientSecretFile   string       `yaml:"client_secret_file"`
	Certificate        *Certificate `yaml:"certificate"`
	FederatedTokenFile string       `yaml:"federated_token_file"` // Load sets it from $AZURE_FEDERATED_TOKEN_FILE when no credential is set
	Cloud              string       `yaml:"cloud"`                // public | usgov | china; default public
	Authority          string       `yaml:"authority"`            // explicit authority URL, overrides cloud
	Server             string       `yaml:"server"`               // host:port (imap) or URL (ews)
	InsecureHTTP       bool         `yaml:"insecure_http"`        // tests only: allow http:// authority and EWS server on loopback
	TLS                TLS          `yaml:"tls"`
	Timeouts           Timeouts     `yaml:"timeouts"`
	Mailbox            string       `yaml:"mailbox"`
	AdditionalUsers    []MailboxRef `yaml:"additional_users"`
	Options            `yaml:",inline"`
}

// The timeouts an account gets for the keys it leaves out. The poller
// applies them (OrDefaults), and validation compares against them.
const (
	DefaultReadTimeout    = 60 * time.Second
	DefaultCommandTimeout = 5 * time.Minute
	DefaultRequestTimeout = 2 * time.Minute
	DefaultStallTimeout   = 10 * time.Minute
)

// Timeouts bound an account's talk with its server; 0 (left out) means
// the default.
type Timeouts struct {
	Read    Duration `yaml:"read"`    // imap: nothing received for this long closes the connection; default 60s
	Command Duration `yaml:"command"` // imap: one command may take this long (a UID SEARCH of a huge folder); default 5m
	Request Duration `yaml:"request"` // ews, graph: one HTTP request, its answer included; default 2m
	Stall   Duration `yaml:"stall"`   // all: no progress for this long restarts the mailbox's connection; default 10m
}

// OrDefaults returns t with each key left out set to its default.
func (t Timeouts) OrDefaults() Timeouts {
	or := func(v Duration, def time.Duration) Duration {
		if v > 0 {
			return v
		}
		return Duration(def)
	}
	return Timeouts{Read: or(t.Read, DefaultReadTimeout), Command: or(t.Command, DefaultCommandTimeout),
		Request: or(t.Request, DefaultRequestTimeout), Stall: or(t.Stall, DefaultStallTimeout)}
}

// MailboxRef is an entry of additional_users: either a plain address or a
// mapping {address: ..., folder: ..., ...} that overrides options for that mailbox.
type MailboxRef struct {
	Address string `yaml:"address"`
	Options `yaml:",inline"`
}

// Duration is a time.Duration written as "60s", "5m" in YAML.
type Duration time.Duration

// ByteSize is a size written as "50MiB", "10MB", "1024" in YAML.
type ByteSize int64

// Mailbox is one resolved (account, mailbox) pair with every option filled
// in: the transports' source.Mailbox and the account it belongs to. It is
// what the poller runs one loop for.
type Mailbox struct {
	Account *Account
	source.Mailbox
}

// Token is the mailbox part of a NATS subject: the lower-cased address with
// "." → "_" and "@" → "_at_" (billing@contoso.com → billing_at_contoso_com).
func Token(address string) string {
	a := strings.ToLower(address)
	a = strings.ReplaceAll(a, "@", "_at_")
	return strings.ReplaceAll(a, ".", "_")
}
