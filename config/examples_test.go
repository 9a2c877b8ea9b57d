package config

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

var exampleEnv = map[string]string{"SUPPORT_CLIENT_SECRET": "example-secret", "ONPREM_PASSWORD": "example-password", "LISTS_PASSWORD": "example-password-2"}

func demoEnv() map[string]string {
	return map[string]string{
		"MAILPOLLER_DEMO_AUTHORITY": "https://127.0.0.1:40001",
		"MAILPOLLER_DEMO_IMAP":      "127.0.0.1:40002",
		"MAILPOLLER_DEMO_CA":        "testdata/ca.pem",
		"MAILPOLLER_DEMO_EWS":       "https://127.0.0.1:40001/EWS/Exchange.asmx",
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestExampleLoads(t *testing.T) {
	data := readFile(t, "../configs/example.yaml")
	if first, _, _ := strings.Cut(string(data), "\n"); first != "# yaml-language-server: $schema=./config.schema.json" {
		t.Errorf("first line = %q", first)
	}
	c := mustParse(t, data, exampleEnv)
	if len(c.Accounts) != 4 || c.Accounts[0].ClientSecret != "example-secret" {
		t.Fatalf("accounts = %d, secret from env: %v", len(c.Accounts), c.Accounts[0].ClientSecret == "example-secret")
	}
	if got := len(c.Mailboxes()); got != 8 {
		t.Errorf("len(Mailboxes()) = %d, want 8", got)
	}
	// The example documents the defaults: loading it must give what leaving
	// every key out gives.
	bare := mustParse(t, base(), nil)
	if c.NATS != bare.NATS || c.HTTP != bare.HTTP || c.Log != bare.Log || !reflect.DeepEqual(c.Defaults, bare.Defaults) {
		t.Errorf("example's nats/http/log/defaults differ from the built-in defaults:\n%+v\n%+v", c.Defaults, bare.Defaults)
	}
}

func TestDemoLoads(t *testing.T) {
	data := readFile(t, "../configs/demo.yaml")
	c := mustParse(t, data, demoEnv())
	if c.NATS.URL != "" || c.NATS.Embedded != (Embedded{Listen: "127.0.0.1:0", StoreDir: "./data/demo-nats"}) || c.HTTP.Listen != "127.0.0.1:0" {
		t.Errorf("demo nats/http = %+v %+v", c.NATS, c.HTTP)
	}
	a := c.Accounts[0]
	if a.Name != "demo" || a.Protocol != "imap" || a.TenantID != "11111111-1111-1111-1111-111111111111" ||
		a.ClientID != "22222222-2222-2222-2222-222222222222" || a.ClientSecret != "demo-secret" ||
		a.AuthorityURL() != "https://127.0.0.1:40001" || a.Server != "127.0.0.1:40002" || a.TLS.CAFile != "testdata/ca.pem" {
		t.Errorf("demo account = %+v", a)
	}
	var addrs []string
	for _, m := range c.Mailboxes() {
		addrs = append(addrs, m.Address)
		if m.PollInterval != 2*time.Second || m.StartFrom != "all" {
			t.Errorf("%s: poll %v start %s, want 2s all", m.Address, m.PollInterval, m.StartFrom)
		}
	}
	if want := []string{"support@contoso.test", "billing@contoso.test", "hr@contoso.test", "sales@contoso.test"}; !reflect.DeepEqual(addrs, want) {
		t.Errorf("demo mailboxes = %v, want %v", addrs, want)
	}
	env := demoEnv()
	env["MAILPOLLER_DEMO_SECRET"] = "from-env"
	if got := mustParse(t, data, env).Accounts[0].ClientSecret; got != "from-env" {
		t.Errorf("MAILPOLLER_DEMO_SECRET not used")
	}
	// Without the demo command's variables the errors name them.
	text := problems(t, data, nil).Error()
	for _, v := range []string{"MAILPOLLER_DEMO_AUTHORITY", "MAILPOLLER_DEMO_IMAP", "MAILPOLLER_DEMO_CA", "MAILPOLLER_DEMO_EWS"} {
		if !strings.Contains(text, v) {
			t.Errorf("errors do not name %s:\n%s", v, text)
		}
	}
}

// keyPaths lists every key path of t in generic form (accounts[].name).
func keyPaths(t reflect.Type, prefix string, out map[string]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		if t.Kind() == reflect.Slice {
			prefix += "[]"
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for key, f := range fieldsOf(t) {
		p := join(prefix, key)
		out[p] = true
		keyPaths(t.FieldByIndex(f.index).Type, p, out)
	}
}

// nodePaths lists the key paths present (not commented out) in a YAML tree.
func nodePaths(n *yaml.Node, prefix string, out map[string]bool) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			nodePaths(c, prefix, out)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			nodePaths(c, prefix+"[]", out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := join(prefix, n.Content[i].Value)
			out[p] = true
			nodePaths(n.Content[i+1], p, out)
		}
	}
}

// example.yaml is the admin's reference: every key of the Go types is set in
// it, except a few alternatives shown commented out (an account has one
// credential, and authority replaces cloud), and it sets nothing else.
func TestExampleHasEveryKey(t *testing.T) {
	commentedOut := map[string]bool{
		"accounts[].client_secret_file":    true,
		"accounts[].certificate":           true,
		"accounts[].certificate.cert_file": true,
		"accounts[].certificate.key_file":  true,
		"accounts[].authority":             true,
		"accounts[].resource":              true,
		"accounts[].password_file":         true,
		"defaults.folders":                 true,
		"accounts[].folders":               true,
	}
	data := readFile(t, "../configs/example.yaml")
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	nodePaths(&doc, "", have)
	want := map[string]bool{}
	keyPaths(reflect.TypeFor[Config](), "", want)
	for p := range want {
		if commentedOut[p] {
			key := p[strings.LastIndexByte(p, '.')+1:]
			if !regexp.MustCompile(`(?m)^\s*#\s*` + regexp.QuoteMeta(key) + `:`).Match(data) {
				t.Errorf("example.yaml does not show %s, not even commented out", p)
			}
			continue
		}
		// Options set on an account are those under defaults; the example
		// shows a few there and all of them under defaults and on a mailbox.
		if opt, ok := strings.CutPrefix(p, "accounts[]."); ok && want["defaults."+opt] && have["defaults."+opt] {
			continue
		}
		if !have[p] {
			t.Errorf("example.yaml does not set %s", p)
		}
	}
	for p := range have {
		if !want[p] {
			t.Errorf("example.yaml sets %s, which the Go types do not have", p)
		}
	}
}
