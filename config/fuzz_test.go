package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// fuzzSecrets are the secrets planted in the seed files (testdata/*.yaml and
// the secret files they name).
var fuzzSecrets = []string{
	"full-yaml-secret-V3ry-D1stinct",
	"LEAK-CANARY-7f3e9b2a",
	"five-mistakes-secret",
	"fuzz-file-secret-QX7",
	"nats-pass-from-file-Z9",
}

// secretKeys are the keys whose values are secrets.
var secretKeys = map[string]bool{"client_secret": true, "password": true, "token": true}

// onlyAsSecret reports whether every occurrence of secret in data lies in the
// value of a secret key. Only then must Parse keep it out of its errors: once
// a mutation turns the secret into a key name, say, it is no longer a secret
// to anyone reading the file.
func onlyAsSecret(data []byte, secret string) bool {
	total := bytes.Count(data, []byte(secret))
	if total == 0 {
		return true
	}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil {
		return false
	}
	inSecret := 0
	var walk func(n *yaml.Node, depth int)
	walk = func(n *yaml.Node, depth int) {
		if n == nil || depth > 50 {
			return
		}
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if secretKeys[k.Value] && v.Kind == yaml.ScalarNode {
					inSecret += strings.Count(v.Value, secret)
					continue
				}
				walk(k, depth+1)
				walk(v, depth+1)
			}
			return
		}
		for _, c := range n.Content {
			walk(c, depth+1)
		}
	}
	walk(&doc, 0)
	return inSecret == total
}

func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	more, _ := filepath.Glob("../configs/*.yaml")
	for _, p := range append(seeds, more...) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(base())
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if c != nil {
				t.Fatalf("Parse returned a config and an error")
			}
			text := err.Error()
			for _, s := range fuzzSecrets {
				if strings.Contains(text, s) && onlyAsSecret(data, s) {
					t.Fatalf("error contains the secret %q:\n%s", s, text)
				}
			}
			return
		}
		for _, m := range c.Mailboxes() {
			if m.Address == "" || m.PollInterval <= 0 || m.Folder == "" || m.MaxMessageBytes <= 0 {
				t.Fatalf("valid config gave an incomplete mailbox %+v", m)
			}
			_ = m.Account.AuthorityURL()
			_ = m.Account.String()
		}
	})
}
