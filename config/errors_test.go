package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestErrorKinds(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "absent.txt")
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	acctNoTenant := y(
		"accounts:",
		"  - name: support",
		"    client_id: 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
		"    client_secret: s3cr3t-value",
		"    mailbox: support@contoso.com",
	)
	tests := []struct {
		name      string
		data      []byte
		env       map[string]string
		line      int
		key       string
		msg, fix  string
		allowMore bool
	}{
		{name: "missing tenant", data: acctNoTenant, line: 2, key: "accounts[0].tenant_id", msg: "missing", fix: "Directory (tenant) ID"},
		{name: "tenant not guid", data: y("accounts:", "  - name: a", "    tenant_id: 1234", "    client_id: 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d", "    client_secret: zzzzzzz", "    mailbox: a@b.c"), line: 3, key: "accounts[0].tenant_id", msg: "neither a GUID nor a domain", fix: "Overview page"},
		{name: "client id not guid", data: y("accounts:", "  - name: a", "    tenant_id: contoso.onmicrosoft.com", "    client_id: my-app", "    client_secret: zzzzzzz", "    mailbox: a@b.c"), line: 4, key: "accounts[0].client_id", msg: "not a GUID", fix: "Application (client) ID"},
		{name: "unknown top key", data: base("natz: {}"), line: 7, key: "natz", msg: "unknown key", fix: "did you mean nats?"},
		{name: "unknown defaults key", data: base("defaults:", "  pol_interval: 5s"), line: 8, key: "defaults.pol_interval", msg: "unknown key", fix: "did you mean poll_interval?"},
		{name: "unknown account key", data: base("    mailboxes: [a@b.c]"), line: 7, key: "accounts[0].mailboxes", msg: "unknown key", fix: "valid keys here:"},
		{name: "unknown embedded key", data: base("nats:", "  embedded:", "    port: 4222"), line: 9, key: "nats.embedded.port", msg: "unknown key", fix: "listen"},
		{name: "unknown tls key", data: base("    tls:", "      verify: false"), line: 8, key: "accounts[0].tls.verify", msg: "unknown key", fix: "insecure_skip_verify"},
		{name: "unknown certificate key", data: y("accounts:", "  - name: a", "    tenant_id: contoso.com", "    client_id: 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d", "    certificate: {cert_file: testdata/app.pem, key_file: testdata/app.key, password: x}", "    mailbox: a@b.c"), line: 5, key: "accounts[0].certificate.password", msg: "unknown key", fix: "cert_file"},
		{name: "unknown additional user key", data: base("    additional_users:", "      - address: x@contoso.com", "        foldr: a"), line: 9, key: "accounts[0].additional_users[0].foldr", msg: "unknown key", fix: "did you mean folder?"},
		{name: "duplicate name", data: base("  - name: support", "    tenant_id: contoso.com", "    client_id: 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d", "    client_secret: other-secret", "    mailbox: other@contoso.com"), line: 7, key: "accounts[1].name", msg: `"support" is already used by accounts[0] (line 2)`, fix: "its own name"},
		{name: "bad name", data: y("accounts:", "  - name: Support Desk", "    tenant_id: contoso.com", "    client_id: 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d", "    client_secret: zzzzzzz", "    mailbox: a@b.c"), line: 2, key: "accounts[0].name", msg: "not valid", fix: "lower-case a-z, 0-9, - and _"},
		{name: "reserved name", data: y("accounts:", "  - name: deadletter", "    tenant_id: contoso.com", "    client_id: 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d", "    client_secret: zzzzzzz", "    mailbox: a@b.c"), line: 2, key: "accounts[0].name", msg: "reserved", fix: "dead letters"},
		{name: "protocol", data: base("    protocol: pop3"), line: 7, key: "accounts[0].protocol", msg: `"pop3" is not valid`, fix: "imap, ews, graph"},
		{name: "cloud", data: base("    cloud: germany"), line: 7, key: "accounts[0].cloud", msg: `"germany" is not valid`, fix: "public, usgov, china"},
		{name: "authority", data: base("    authority: login.example.com"), line: 7, key: "accounts[0].authority", msg: "not an http:// or https:// URL", fix: "https://login.microsoftonline.com"},
		{name: "authority plain http", data: base("    authority: http://127.0.0.1:8080"), line: 7, key: "accounts[0].authority", msg: "plain http would send the client secret", fix: "set insecure_http: true"},
		{name: "authority http not loopback", data: base("    authority: http://login.example.com", "    insecure_http: true"), line: 7, key: "accounts[0].authority", msg: "not loopback", fix: "only to 127.0.0.1"},
		{name: "ews server plain http", data: base("    protocol: ews", "    server: http://127.0.0.1:9/EWS/Exchange.asmx"), line: 8, key: "accounts[0].server", msg: "plain http would send the bearer token", fix: "set insecure_http: true"},
		{name: "timeout out of range", data: base("    timeouts: {read: 500ms}"), line: 7, key: "accounts[0].timeouts.read", msg: "500ms is out of range", fix: "between 1s and 1h"},
		{name: "timeout of another protocol", data: base("    timeouts:", "      request: 30s"), line: 8, key: "accounts[0].timeouts.request", msg: "is not used with protocol: imap", fix: "read and command are IMAP's"},
		{name: "command shorter than read", data: base("    timeouts: {read: 2m, command: 1m}"), line: 7, key: "accounts[0].timeouts.command", msg: "shorter than timeouts.read", fix: "command ≥ read"},
		{name: "stall shorter than a command", data: base("    timeouts: {stall: 2m}"), line: 7, key: "accounts[0].timeouts.stall", msg: "is not longer than timeouts.command (5m0s)", fix: "default 10m"},
		{name: "insecure_http not a bool", data: base("    insecure_http: yes please"), line: 7, key: "accounts[0].insecure_http", msg: "not a boolean", fix: "true or false"},
		{name: "imap server", data: base("    server: outlook.office365.com"), line: 7, key: "accounts[0].server", msg: "not host:port", fix: "outlook.office365.com:993"},
		{name: "ews server", data: base("    protocol: ews", "    server: outlook.office365.com:443"), line: 8, key: "accounts[0].server", msg: "not an http:// or https:// URL", fix: "EWS/Exchange.asmx"},
		{name: "graph server", data: base("    protocol: graph", "    server: graph.microsoft.com"), line: 8, key: "accounts[0].server", msg: "not an http:// or https:// URL", fix: "graph.microsoft.com/v1.0"},
		{name: "graph server plain http", data: base("    protocol: graph", "    server: http://127.0.0.1:9/v1.0"), line: 8, key: "accounts[0].server", msg: "plain http would send the bearer token", fix: "set insecure_http: true"},
		{name: "mailbox missing", data: y("accounts:", "  - name: a", "    tenant_id: contoso.com", "    client_id: 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d", "    client_secret: zzzzzzz"), line: 2, key: "accounts[0].mailbox", msg: "missing", fix: "SMTP address"},
		{name: "mailbox invalid", data: y("accounts:", "  - name: a", "    tenant_id: contoso.com", "    client_id: 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d", "    client_secret: zzzzzzz", "    mailbox: Support <support@contoso.com>"), line: 6, key: "accounts[0].mailbox", msg: "not an email address", fix: "support@contoso.com"},
		{name: "additional user invalid", data: base("    additional_users:", "      - billing@contoso.com", "      - billing"), line: 9, key: "accounts[0].additional_users[1]", msg: `"billing" is not an email address`, fix: "SMTP address"},
		{name: "additional user without address", data: base("    additional_users:", "      - folder: Archive"), line: 8, key: "accounts[0].additional_users[0].address", msg: "missing", fix: "SMTP address"},
		{name: "additional user wildcard", data: base("    additional_users: ['a*b@contoso.com']"), line: 7, key: "accounts[0].additional_users[0]", msg: "cannot be part of a NATS subject", fix: "not supported"},
		{name: "duration syntax", data: base("    poll_interval: often"), line: 7, key: "accounts[0].poll_interval", msg: `"often" is not a duration`, fix: `"30s", "5m"`},
		{name: "duration unit", data: base("defaults:", "  poll_interval: 60"), line: 8, key: "defaults.poll_interval", msg: "has no unit", fix: `"30s"`},
		{name: "duration too short", data: base("    additional_users:", "      - address: x@contoso.com", "        poll_interval: 100ms"), line: 9, key: "accounts[0].additional_users[0].poll_interval", msg: "too short", fix: "at least 1s"},
		{name: "start_from", data: base("    start_from: beginning"), line: 7, key: "accounts[0].start_from", msg: `"beginning" is not valid`, fix: "unread, all, now"},
		{name: "after_read", data: base("defaults:", "  after_read: archive"), line: 8, key: "defaults.after_read", msg: `"archive" is not valid`, fix: "mark_read, move, delete, none"},
		{name: "move without move_to", data: base("    after_read: move"), line: 7, key: "accounts[0].after_read", msg: "move needs move_to", fix: "set move_to"},
		{name: "move_to cleared on a mailbox", data: base("    additional_users:", "      - address: x@contoso.com", "        move_to: ''", "defaults:", "  after_read: move", "  move_to: Done"), line: 9, key: "accounts[0].additional_users[0].move_to", msg: "move needs move_to", fix: "mark_read, delete or none"},
		{name: "move in defaults", data: base("defaults:", "  after_read: move"), line: 8, key: "defaults.after_read", msg: "move needs move_to", fix: "set move_to"},
		{name: "size", data: base("    max_message_bytes: 50 megabytes"), line: 7, key: "accounts[0].max_message_bytes", msg: "unknown unit", fix: `"512KiB", "50MiB", "10MB"`},
		{name: "size zero", data: base("    max_message_bytes: 0"), line: 7, key: "accounts[0].max_message_bytes", msg: "more than 0", fix: "50MiB"},
		{name: "log level", data: base("log:", "  level: verbose"), line: 8, key: "log.level", msg: `"verbose" is not valid`, fix: "debug, info, warn, error"},
		{name: "log format", data: base("log: {format: logfmt}"), line: 7, key: "log.format", msg: `"logfmt" is not valid`, fix: "text, json"},
		{name: "ca file missing", data: base("    tls:", "      ca_file: "+missing), line: 8, key: "accounts[0].tls.ca_file", msg: "does not exist", fix: "PEM file"},
		{name: "ca file not pem", data: base("nats:", "  tls: {ca_file: "+notPEM+"}"), line: 8, key: "nats.tls.ca_file", msg: "holds no PEM certificate", fix: "PEM file"},
		{name: "same address twice", data: base("    additional_users:", "      - Support@contoso.com"), line: 8, key: "accounts[0].additional_users[0]", msg: "same subject mail.inbound.support.support_at_contoso_com as accounts[0].mailbox (line 6)", fix: "list each mailbox once"},
		{name: "dot vs underscore", data: base("    additional_users:", "      - a.b@contoso.com", "      - address: a_b@contoso.com"), line: 9, key: "accounts[0].additional_users[1].address", msg: "as accounts[0].additional_users[0] (line 8)", fix: "share a subject"},
		{name: "subject prefix spaces", data: base("nats: {subject_prefix: mail inbound}"), line: 7, key: "nats.subject_prefix", msg: "not a valid NATS subject", fix: "mail.inbound"},
		{name: "subject prefix wildcard", data: base("nats:", "  subject_prefix: mail.*"), line: 8, key: "nats.subject_prefix", msg: "not a valid NATS subject", fix: "without spaces, * or >"},
		{name: "subject prefix empty token", data: base("nats:", "  subject_prefix: mail..in"), line: 8, key: "nats.subject_prefix", msg: "not a valid NATS subject", fix: "dot-separated"},
		{name: "secret and secret file", data: base("    client_secret_file: testdata/secret.txt"), line: 7, key: "accounts[0].client_secret_file", msg: "both client_secret and client_secret_file", fix: "keep one"},
		{name: "secret file missing", data: y("accounts:", "  - name: a", "    tenant_id: contoso.com", "    client_id: 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d", "    client_secret_file: "+missing, "    mailbox: a@b.c"), line: 5, key: "accounts[0].client_secret_file", msg: "does not exist", fix: "Certificates & secrets"},
		{name: "secret file is a device", data: y("accounts:", "  - name: a", "    tenant_id: contoso.com", "    client_id: 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d", "    client_secret_file: /dev/zero", "    mailbox: a@b.c"), line: 5, key: "accounts[0].client_secret_file", msg: "/dev/zero is not a regular file", fix: "Certificates & secrets"},
		{name: "ca file is a directory", data: base("    tls: {ca_file: testdata}"), line: 7, key: "accounts[0].tls.ca_file", msg: "testdata is not a regular file", fix: "PEM"},
		{name: "no credential", data: y("accounts:", "  - name: a", "    tenant_id: contoso.com", "    client_id: 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d", "    mailbox: a@b.c"), line: 2, key: "accounts[0]", msg: "no credential", fix: "AZURE_FEDERATED_TOKEN_FILE"},
		{name: "two credentials", data: base("    federated_token_file: /var/run/token"), line: 7, key: "accounts[0].federated_token_file", msg: "client_secret and federated_token_file are both set", fix: "exactly one"},
		{name: "certificate key missing", data: y("accounts:", "  - name: a", "    tenant_id: contoso.com", "    client_id: 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d", "    certificate:", "      cert_file: testdata/app.pem", "    mailbox: a@b.c"), line: 5, key: "accounts[0].certificate.key_file", msg: "missing", fix: "both"},
		{name: "env missing", data: y("accounts:", "  - name: a", "    tenant_id: ${TENANT}", "    client_id: 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d", "    client_secret: zzzzzzz", "    mailbox: a@b.c"), line: 3, key: "accounts[0].tenant_id", msg: "environment variable TENANT is not set", fix: "${NAME:-default}"},
		{name: "no accounts", data: y("log: {level: info}"), line: 0, key: "accounts", msg: "no accounts", fix: "add at least one"},
		{name: "accounts not a list", data: y("accounts:", "  name: a"), line: 2, key: "accounts", msg: "must be a list", fix: "- "},
		{name: "nats url", data: base("nats: {url: 'localhost:4222'}"), line: 7, key: "nats.url", msg: "not a NATS server URL", fix: "nats://host:4222"},
		{name: "nats two logins", data: base("nats:", "  user: a", "  token: b"), line: 7, key: "nats", msg: "more than one", fix: "keep the one"},
		{name: "stream name", data: base("nats:", "  stream: mail.events"), line: 8, key: "nats.stream", msg: "not a valid stream name", fix: "MAIL"},
		{name: "embedded listen", data: base("nats:", "  embedded: {listen: '4222'}"), line: 8, key: "nats.embedded.listen", msg: "not host:port", fix: "port 0 picks a free port"},
		{name: "http listen", data: base("http:", "  listen: localhost"), line: 8, key: "http.listen", msg: "not host:port", fix: `"" to turn the endpoint off`},
		{name: "bool", data: base("    tls: {insecure_skip_verify: maybe}"), line: 7, key: "accounts[0].tls.insecure_skip_verify", msg: "not a boolean", fix: "true or false"},
		{name: "list for scalar", data: base("    folder: [INBOX, Archive]"), line: 7, key: "accounts[0].folder", msg: "must be a single value", fix: ""},
		{name: "key twice", data: base("    mailbox: other@contoso.com"), line: 7, key: "accounts[0].mailbox", msg: "set twice (first on line 6)", fix: "keep one"},
		{name: "yaml syntax", data: y("log:", "  level: info", "  format: text: json"), line: 3, key: "", msg: "YAML syntax", fix: "indentation"},
		{name: "mapping expected", data: y("nats: mail"), line: 1, key: "nats", msg: "must be a mapping", fix: "indent", allowMore: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es := problems(t, tt.data, tt.env)
			if tt.key == "" && tt.msg == "" {
				return // only checks that it fails
			}
			var found *Error
			for i := range es.List {
				if e := es.List[i]; e.Line == tt.line && e.Key == tt.key && strings.Contains(e.Msg, tt.msg) {
					found = &es.List[i]
				}
			}
			if found == nil {
				t.Fatalf("no error at line %d, key %q with %q; got:\n%v", tt.line, tt.key, tt.msg, es)
			}
			if !strings.Contains(found.Fix, tt.fix) {
				t.Errorf("fix = %q, want it to contain %q", found.Fix, tt.fix)
			}
			if found.File != "config.yaml" || es.File != "config.yaml" {
				t.Errorf("File = %q / %q, want config.yaml", found.File, es.File)
			}
			if !tt.allowMore && len(es.List) != 1 {
				t.Errorf("got %d errors, want 1:\n%v", len(es.List), es)
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	es := problems(t, y(
		"accounts:",
		"  - name: support",
		"    client_id: 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
		"    client_secret: zzzzzzzzz",
		"    mailbox: support@contoso.com",
		"    tenant_id: ''",
	), nil)
	want := "config.yaml:6: accounts[0].tenant_id: missing; set it to the Directory (tenant) ID GUID from the app registration's Overview page"
	if got := es.Error(); !strings.HasPrefix(got, want) {
		t.Errorf("Error() = %q, want prefix %q", got, want)
	}
}

// five-mistakes.yaml holds exactly five problems; all must come back at once,
// in line order.
func TestAllProblemsAtOnce(t *testing.T) {
	data, err := os.ReadFile("testdata/five-mistakes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	es := problems(t, data, nil)
	want := []struct {
		line int
		key  string
	}{
		{3, "log.level"},
		{5, "defaults.poll_interval"},
		{9, "accounts[0].tenant_id"},
		{13, "accounts[0].additional_users[0]"},
		{15, "accounts[0].protocl"},
	}
	if len(es.List) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(es.List), len(want), es)
	}
	for i, w := range want {
		if e := es.List[i]; e.Line != w.line || e.Key != w.key {
			t.Errorf("error %d = line %d key %q, want line %d key %q", i, e.Line, e.Key, w.line, w.key)
		}
	}
	if n := strings.Count(es.Error(), "\n"); n != 4 {
		t.Errorf("Error() has %d line breaks, want 4 (one problem per line)", n)
	}
}

// Aliases that multiply (a "billion laughs" document: 1000 accounts that
// are each an alias of one with 1000 mailboxes) end with an error, fast.
func TestAliasBomb(t *testing.T) {
	users := strings.Repeat("*u, ", 999) + "*u"
	accts := strings.Repeat("*a, ", 999) + "*a"
	es := problems(t, []byte("accounts: [&a {name: a, additional_users: [&u x@contoso.com, "+users+"]}, "+accts+"]\n"), nil)
	if n := len(es.List); n > maxErrors+1 {
		t.Errorf("got %d errors, want at most %d", n, maxErrors+1)
	}
	if !strings.Contains(es.Error(), "too many values") {
		t.Errorf("errors do not say the document expands too much:\n%.2000s", es.Error())
	}
}
