package config

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mailpoller/mailpoller/source"
)

func TestParseFull(t *testing.T) {
	data, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := mustParse(t, data, nil)

	n := c.NATS
	if n.URL != "nats://nats1.example.net:4222,nats://nats2.example.net:4222" || n.Embedded.Listen != "127.0.0.1:4333" ||
		n.Embedded.StoreDir != "/var/lib/mailpoller/nats" || n.User != "poller" || n.Stream != "MAILSTREAM" ||
		n.SubjectPrefix != "acme.mail" || n.TLS.CAFile != "testdata/ca.pem" {
		t.Errorf("NATS = %+v", n)
	}
	if n.Password != "nats-pass-from-file-Z9" {
		t.Errorf("NATS.Password was not read from password_file (trailing newline trimmed)")
	}
	if c.HTTP.Listen != "0.0.0.0:9000" || c.Log != (Log{Level: "debug", Format: "json"}) {
		t.Errorf("HTTP = %+v, Log = %+v", c.HTTP, c.Log)
	}
	if got := len(c.Accounts); got != 4 {
		t.Fatalf("len(Accounts) = %d, want 4", got)
	}
	sup, sales, ops, k8s := &c.Accounts[0], &c.Accounts[1], &c.Accounts[2], &c.Accounts[3]
	if sup.ClientSecret != "full-yaml-secret-V3ry-D1stinct" || !sup.TLS.InsecureSkipVerify || sup.Server != "imap.example.net:1993" {
		t.Errorf("support account = %+v", *sup)
	}
	if sales.ClientSecret != "fuzz-file-secret-QX7" || sales.Server != DefaultEWSServer || sales.Protocol != "ews" || !sales.InsecureHTTP || sup.InsecureHTTP {
		t.Errorf("sales account: secret from file %v, server %q, protocol %q", sales.ClientSecret == "fuzz-file-secret-QX7", sales.Server, sales.Protocol)
	}
	if ops.Certificate == nil || ops.Certificate.CertFile != "testdata/app.pem" || ops.Server != DefaultIMAPServer || ops.Protocol != "imap" {
		t.Errorf("ops account = %+v", *ops)
	}
	if k8s.FederatedTokenFile != "/var/run/secrets/azure/tokens/azure-identity-token" || k8s.CredentialKind() != "federated_token_file" {
		t.Errorf("k8s account = %+v", *k8s)
	}
	for _, tt := range []struct {
		a    *Account
		want string
	}{
		{sup, "https://login.microsoftonline.us"},
		{sales, "http://127.0.0.1:8080"},
		{ops, "https://login.chinacloudapi.cn"},
		{k8s, "https://login.microsoftonline.com"},
	} {
		if got := tt.a.AuthorityURL(); got != tt.want {
			t.Errorf("%s.AuthorityURL() = %q, want %q", tt.a.Name, got, tt.want)
		}
	}

	type mb struct {
		acct, addr, folder, start, after, moveTo string
		poll                                     time.Duration
		max                                      int64
	}
	var got []mb
	for _, m := range c.Mailboxes() {
		got = append(got, mb{m.Account.Name, m.Address, m.Folder, string(m.StartFrom), string(m.AfterRead), m.MoveTo, m.PollInterval, m.MaxMessageBytes})
	}
	want := []mb{
		{"support", "support@contoso.com", "Inbox", "all", "move", "Processed", 30 * time.Second, 10_000_000},
		{"support", "billing@contoso.com", "Inbox", "all", "move", "Processed", 30 * time.Second, 10_000_000},
		{"support", "hr@contoso.com", "Applications", "now", "mark_read", "Processed", 5 * time.Minute, 1 << 30},
		{"sales-eu", "sales@contoso.com", "Inbox", "all", "none", "Processed", 2 * time.Minute, 10_000_000},
		{"ops", "ops@contoso.cn", "Inbox", "all", "delete", "Processed", 2 * time.Minute, 10_000_000},
		{"k8s", "k8s@contoso.com", "Inbox", "all", "move", "Processed", 2 * time.Minute, 512 << 10},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Mailboxes() =\n%+v\nwant\n%+v", got, want)
	}
	if m := c.Mailboxes(); m[0].Account != sup || m[3].Account != sales {
		t.Errorf("Mailboxes() Account does not point into Config.Accounts")
	}

	// Round trip: marshal the loaded config (secrets now inline, so the
	// *_file keys go) and parse it again.
	sales.ClientSecretFile = ""
	c.NATS.PasswordFile = ""
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	again := mustParse(t, out, nil)
	if !reflect.DeepEqual(again, c) {
		t.Errorf("round trip differs:\n%s", out)
	}
}

func TestDefaults(t *testing.T) {
	c := mustParse(t, base(), nil)
	if c.NATS.Stream != "MAIL" || c.NATS.SubjectPrefix != "mail.inbound" || c.NATS.URL != "" ||
		c.NATS.Embedded != (Embedded{Listen: "127.0.0.1:4222", StoreDir: "./data/nats"}) {
		t.Errorf("NATS defaults = %+v", c.NATS)
	}
	if c.HTTP.Listen != "127.0.0.1:9464" || c.Log != (Log{Level: "info", Format: "text"}) {
		t.Errorf("HTTP = %+v, Log = %+v", c.HTTP, c.Log)
	}
	a := c.Accounts[0]
	if a.Protocol != "imap" || a.Cloud != "public" || a.Server != "outlook.office365.com:993" {
		t.Errorf("account defaults: protocol %q cloud %q server %q", a.Protocol, a.Cloud, a.Server)
	}
	if g := mustParse(t, base("    protocol: graph"), nil).Accounts[0]; g.Protocol != "graph" || g.Server != "https://graph.microsoft.com/v1.0" {
		t.Errorf("graph account default server %q", g.Server)
	}
	want := Mailbox{Account: &c.Accounts[0], Mailbox: source.Mailbox{Address: "support@contoso.com", PollInterval: time.Minute, Folder: "INBOX",
		StartFrom: "unread", AfterRead: "mark_read", MaxMessageBytes: 50 << 20, StoreRaw: "always"}}
	if got := c.Mailboxes(); len(got) != 1 || got[0] != want {
		t.Errorf("Mailboxes() = %+v, want [%+v]", got, want)
	}
	if d := c.Defaults; d.PollInterval.D() != time.Minute || *d.Folder != "INBOX" || int64(*d.MaxMessageBytes) != 50<<20 {
		t.Errorf("Defaults not filled in: %+v", d)
	}

	ews := mustParse(t, base("    protocol: ews"), nil)
	if got := ews.Accounts[0].Server; got != "https://outlook.office365.com/EWS/Exchange.asmx" {
		t.Errorf("ews server default = %q", got)
	}
	for _, tt := range []struct {
		extra []string
		want  string
	}{
		{[]string{"http:", `  listen: ""`}, ""},
		{[]string{"http: {}"}, "127.0.0.1:9464"},
		{[]string{"http:", "  listen:"}, "127.0.0.1:9464"},
		{[]string{"http: {listen: '[::1]:0'}"}, "[::1]:0"},
	} {
		if got := mustParse(t, base(tt.extra...), nil).HTTP.Listen; got != tt.want {
			t.Errorf("%q: HTTP.Listen = %q, want %q", tt.extra, got, tt.want)
		}
	}
}

// A config built in code (no Load) still resolves with the built-in defaults.
func TestMailboxesInCode(t *testing.T) {
	folder := "Archive"
	c := &Config{Accounts: []Account{{Name: "x", Mailbox: "A@B.C", AdditionalUsers: []MailboxRef{
		{Address: "D@E.F", Options: Options{Folder: &folder}},
	}}}}
	got := c.Mailboxes()
	if len(got) != 2 || got[0].Address != "a@b.c" || got[0].Folder != "INBOX" || got[1].Folder != "Archive" ||
		got[1].PollInterval != time.Minute || got[1].AfterRead != "mark_read" {
		t.Errorf("Mailboxes() = %+v", got)
	}
	if got := (&Account{Cloud: "usgov", Authority: "https://login.example.test/"}).AuthorityURL(); got != "https://login.example.test" {
		t.Errorf("AuthorityURL() = %q", got)
	}
}

func TestEnvExpansion(t *testing.T) {
	env := map[string]string{"TENANT": "contoso.onmicrosoft.com", "SECRET": "env-secret-Pz", "EMPTY": "", "SUB": "acme"}
	c := mustParse(t, y(
		"nats:",
		"  subject_prefix: ${SUB}.${MISSING_OK:-mail}",
		"  stream: ${EMPTY:-MAIL}",
		"  user: $${LITERAL}",
		"accounts:",
		"  - name: support",
		"    tenant_id: ${TENANT}",
		"    client_id: ${CLIENT:-9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d}",
		"    client_secret: \"pre-${SECRET}-post$x\"",
		"    mailbox: support@contoso.com",
		"    poll_interval: ${POLL:-45s}",
	), env)
	a := c.Accounts[0]
	if c.NATS.SubjectPrefix != "acme.mail" || c.NATS.Stream != "MAIL" || c.NATS.User != "${LITERAL}" {
		t.Errorf("NATS = %+v", c.NATS)
	}
	if a.TenantID != "contoso.onmicrosoft.com" || a.ClientID != "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d" ||
		a.ClientSecret != "pre-env-secret-Pz-post$x" || a.PollInterval.D() != 45*time.Second {
		t.Errorf("account = %+v (secret ok: %v)", a, a.ClientSecret == "pre-env-secret-Pz-post$x")
	}

	es := problems(t, base("    folder: ${A}/${B}", "    move_to: ${bad name}", "    server: ${UNCLOSED"), nil)
	if len(es.List) != 3 {
		t.Fatalf("got %d errors, want 3:\n%v", len(es.List), es)
	}
	for i, want := range []string{"environment variables A, B are not set", "must hold an environment variable name", "unterminated"} {
		if !strings.Contains(es.List[i].Msg, want) {
			t.Errorf("error %d = %q, want %q", i, es.List[i].Msg, want)
		}
	}
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secret := write("secret", "file-secret-value\r\n")
	pass := write("pass", "nats-password\n\n")
	token := write("token", "nats-token")
	empty := write("empty", "\n")
	c := mustParse(t, y(
		"nats:",
		"  user: mailpoller",
		"  password_file: "+pass,
		"accounts:",
		"  - name: a",
		"    tenant_id: contoso.com",
		"    client_id: 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
		"    client_secret_file: ${SECRET_FILE}",
		"    mailbox: a@contoso.com",
	), map[string]string{"SECRET_FILE": secret})
	if c.Accounts[0].ClientSecret != "file-secret-value" || c.NATS.Password != "nats-password" {
		t.Errorf("secrets not read from files (or newlines kept)")
	}
	if c.Accounts[0].ClientSecretFile != secret {
		t.Errorf("ClientSecretFile = %q, want %q", c.Accounts[0].ClientSecretFile, secret)
	}
	c = mustParse(t, base("nats: {token_file: "+token+"}"), nil)
	if c.NATS.Token != "nats-token" {
		t.Errorf("token not read from token_file")
	}
	for _, tt := range []struct {
		extra    []string
		line     int
		key, msg string
	}{
		{[]string{"nats:", "  token: abcdefgh", "  token_file: " + token}, 9, "nats.token_file", "both token and token_file"},
		{[]string{"nats:", "  user: u", "  password_file: " + empty}, 9, "nats.password_file", "is empty"},
		{[]string{"nats:", "  user: u", "  password: abcdefgh", "  password_file: " + pass}, 10, "nats.password_file", "both password and password_file"},
		{[]string{"nats:", "  token_file: " + filepath.Join(dir, "absent")}, 8, "nats.token_file", "does not exist"},
	} {
		es := problems(t, base(tt.extra...), nil)
		if len(es.List) != 1 || es.List[0].Line != tt.line || es.List[0].Key != tt.key || !strings.Contains(es.List[0].Msg, tt.msg) {
			t.Errorf("%q: errors =\n%v\nwant line %d key %s: %s", tt.extra, es, tt.line, tt.key, tt.msg)
		}
	}
}

func TestFederatedTokenEnv(t *testing.T) {
	noCred := y(
		"accounts:",
		"  - name: a",
		"    tenant_id: contoso.com",
		"    client_id: 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
		"    mailbox: a@contoso.com",
	)
	c := mustParse(t, noCred, map[string]string{"AZURE_FEDERATED_TOKEN_FILE": "/var/run/token"})
	if got := c.Accounts[0].FederatedTokenFile; got != "/var/run/token" {
		t.Errorf("FederatedTokenFile = %q, want it from AZURE_FEDERATED_TOKEN_FILE", got)
	}
	// An account with its own credential does not pick the variable up.
	c = mustParse(t, base(), map[string]string{"AZURE_FEDERATED_TOKEN_FILE": "/var/run/token"})
	if got := c.Accounts[0].FederatedTokenFile; got != "" {
		t.Errorf("FederatedTokenFile = %q, want empty", got)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "mailpoller.yaml")
	t.Setenv("MAILPOLLER_TEST_SECRET", "load-secret-123")
	if err := os.WriteFile(p, bytes.ReplaceAll(base(), []byte("base-secret-Kq81"), []byte("${MAILPOLLER_TEST_SECRET}")), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatalf("Load() error: %v", err)
	}
	if c.Path != p || c.Accounts[0].ClientSecret != "load-secret-123" {
		t.Errorf("Load() Path = %q, secret from env: %v", c.Path, c.Accounts[0].ClientSecret == "load-secret-123")
	}
	if _, err := Load(filepath.Join(dir, "absent.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(absent) error = %v, want fs.ErrNotExist", err)
	}
	if err := os.WriteFile(p, []byte("accounts: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(p)
	if err == nil || !strings.HasPrefix(err.Error(), p+":1: accounts: no accounts") {
		t.Errorf("Load() error = %v, want it to start with %s:1", err, p)
	}
}

// YAML merge keys let accounts share an app registration's settings.
func TestMergeKeys(t *testing.T) {
	c := mustParse(t, y(
		"accounts:",
		"  - &app",
		"    name: a",
		"    tenant_id: contoso.com",
		"    client_id: 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
		"    client_secret: merged-secret",
		"    mailbox: a@contoso.com",
		"  - <<: *app",
		"    name: b",
		"    mailbox: b@contoso.com",
	), nil)
	b := c.Accounts[1]
	if b.Name != "b" || b.Mailbox != "b@contoso.com" || b.TenantID != "contoso.com" || b.ClientSecret != "merged-secret" {
		t.Errorf("merged account = %+v", b)
	}
	es := problems(t, y("accounts:", "  - <<: [1, 2]"), nil)
	if es.List[0].Line != 2 || !strings.Contains(es.List[0].Msg, "<< must merge a mapping") {
		t.Errorf("errors =\n%v", es)
	}
}

func TestNoSecretsInOutput(t *testing.T) {
	const secret = "Sup3r-S3cret-Never-Print-Me"
	c := mustParse(t, bytes.ReplaceAll(base("nats: {user: u, password: "+secret+"}"), []byte("base-secret-Kq81"), []byte(secret)), nil)
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	log.Info("loaded", "account", c.Accounts[0], "nats", c.NATS, "ptr", &c.Accounts[0])
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("loaded", "account", c.Accounts[0], "nats", c.NATS)
	for _, s := range []string{buf.String(), c.Accounts[0].String(), c.NATS.String()} {
		if strings.Contains(s, secret) {
			t.Errorf("secret printed: %s", s)
		}
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{c.Accounts[0], &c.Accounts[0], c.NATS, c.Mailboxes()[0]} {
			if s := sprintf(format, v); strings.Contains(s, secret) {
				t.Errorf("%s of %T prints the secret: %s", format, v, s)
			}
		}
	}
	if !strings.Contains(buf.String(), "credential=client_secret") {
		t.Errorf("log lacks the credential kind:\n%s", buf.String())
	}
}

// TestInsecureHTTPOptIn: with insecure_http, plain http to loopback is
// accepted for the authority and the EWS server.
func TestInsecureHTTPOptIn(t *testing.T) {
	c := mustParse(t, base("    protocol: ews", "    authority: http://127.0.0.1:8080", "    server: http://localhost:9/EWS/Exchange.asmx", "    insecure_http: true"), nil)
	if a := c.Accounts[0]; !a.InsecureHTTP || a.AuthorityURL() != "http://127.0.0.1:8080" || a.Server != "http://localhost:9/EWS/Exchange.asmx" {
		t.Errorf("account = %+v", a)
	}
}
