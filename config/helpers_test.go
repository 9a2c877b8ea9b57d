package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// y joins lines into a YAML document, so a test's line numbers are the
// argument positions (first argument = line 1).
func y(lines ...string) []byte { return []byte(strings.Join(lines, "\n") + "\n") }

// base is a valid single-account config of 6 lines; extra lines start at 7.
func base(extra ...string) []byte {
	return y(append([]string{
		"accounts:",
		"  - name: support",
		"    tenant_id: 0f6b3a52-1c3d-4e5f-8a9b-0c1d2e3f4a5b",
		"    client_id: 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
		"    client_secret: base-secret-Kq81",
		"    mailbox: support@contoso.com",
	}, extra...)...)
}

// parseEnv is Parse with a fixed environment instead of the process's.
func parseEnv(data []byte, env map[string]string) (*Config, error) {
	return parse(data, "config.yaml", func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
}

func mustParse(t *testing.T, data []byte, env map[string]string) *Config {
	t.Helper()
	c, err := parseEnv(data, env)
	if err != nil {
		t.Fatalf("Parse() error:\n%v", err)
	}
	return c
}

// problems returns the *Errors of a Parse that must fail.
func problems(t *testing.T, data []byte, env map[string]string) *Errors {
	t.Helper()
	c, err := parseEnv(data, env)
	if err == nil {
		t.Fatalf("Parse() = %+v, nil; want errors", c)
	}
	if c != nil {
		t.Errorf("Parse() returned a config together with an error")
	}
	var es *Errors
	if !errors.As(err, &es) {
		t.Fatalf("Parse() error %T %v, want *Errors", err, err)
	}
	return es
}

func sprintf(format string, v any) string { return fmt.Sprintf(format, v) }

// problemAt returns the problem of a Parse that must fail at key with msg
// in its message, failing t when there is none.
func problemAt(t *testing.T, data []byte, key, msg string) Error {
	t.Helper()
	es := problems(t, data, nil)
	for _, e := range es.List {
		if e.Key == key && strings.Contains(e.Msg, msg) {
			return e
		}
	}
	t.Fatalf("no error at %s with %q; got:\n%v", key, msg, es)
	return Error{}
}
