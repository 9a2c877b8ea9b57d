package config

import (
	"os"
	"strings"
	"testing"
)

// secret-leak.yaml puts a canary secret into secret keys and, as an admin
// might by mistake, into other keys too. No message may contain it, nor the
// content of a secret file.
func TestSecretsNeverInErrors(t *testing.T) {
	data, err := os.ReadFile("testdata/secret-leak.yaml")
	if err != nil {
		t.Fatal(err)
	}
	es := problems(t, data, nil)
	text := es.Error()
	for _, secret := range []string{"LEAK-CANARY-7f3e9b2a", "fuzz-file-secret-QX7", "nats-pass-from-file-Z9"} {
		if strings.Contains(text, secret) {
			t.Errorf("errors contain the secret %q:\n%s", secret, text)
		}
	}
	if len(es.List) < 15 {
		t.Errorf("got %d errors, want at least 15 (one per planted problem):\n%s", len(es.List), text)
	}
	// The problems are still told, with their keys.
	for _, key := range []string{"nats.url", "nats.password_file", "accounts[0].client_secret_file", "accounts[1].client_secret",
		"accounts[1].certificate.cert_file", "accounts[2].client_secret", "accounts[2].poll_interval"} {
		if !strings.Contains(text, ": "+key+": ") {
			t.Errorf("no error for %s:\n%s", key, text)
		}
	}
}
