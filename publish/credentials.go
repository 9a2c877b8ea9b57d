package publish

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// CredentialsFileName is the file in the embedded server's store directory
// that holds the NKey seed of the one user the server admits. It is made
// once per store directory, with mode 0600. The nats CLI reads it with
// --nkey.
const CredentialsFileName = "client.nk"

// ListenNone as nats.embedded.listen starts the embedded server without any
// TCP listener: only the mailpoller process itself can reach it, so it
// needs no credentials, and `tail`, `check` and the nats CLI cannot connect.
const ListenNone = "none"

// ErrNoCredentials means the embedded server's credentials file does not
// exist yet: no `mailpoller run` has started a server on that store.
var ErrNoCredentials = errors.New("the embedded NATS server's credentials file does not exist")

// CredentialsPath is where the embedded server using storeDir keeps its
// client credentials.
func CredentialsPath(storeDir string) string {
	return filepath.Join(storeDir, CredentialsFileName)
}

// loadOrCreateKey returns the user key of the embedded server in storeDir,
// generating it (from crypto/rand) and writing it with mode 0600 when the
// file does not exist. It refuses a file that others may read.
func loadOrCreateKey(storeDir string) (nkeys.KeyPair, error) {
	path := CredentialsPath(storeDir)
	kp, err := loadKey(path)
	if !errors.Is(err, ErrNoCredentials) {
		return kp, err
	}
	if err := os.MkdirAll(storeDir, 0o700); err != nil {
		return nil, fmt.Errorf("create NATS store directory: %w", err)
	}
	kp, err = nkeys.CreateUser()
	if err != nil {
		return nil, fmt.Errorf("generate the embedded NATS server's credentials: %w", err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return nil, fmt.Errorf("generate the embedded NATS server's credentials: %w", err)
	}
	// Written whole to a private temporary file, then linked into place:
	// a crash never leaves half a seed, and a file made meanwhile by
	// another process wins (Link does not replace).
	tmp, err := os.CreateTemp(storeDir, ".client-*.nk") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	content := "# NKey seed of the mailpoller embedded NATS server's client.\n" +
		"# Connect with: nats --nkey " + path + " ...\n" + string(seed) + "\n"
	_, werr := tmp.WriteString(content)
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("write %s: %w", path, werr)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return loadKey(path)
}

// loadKey reads the seed in path, checking first that only its owner may
// read it.
func loadKey(path string) (nkeys.KeyPair, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNoCredentials, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read NATS credentials: %w", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("NATS credentials file %s has mode %04o, so other users may read it: "+
			"run chmod 600 %s, or delete it to have new credentials made at the next start", path, fi.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read NATS credentials: %w", err)
	}
	defer clear(data)
	var seed []byte
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			seed = []byte(line)
			break
		}
	}
	kp, err := nkeys.FromSeed(seed)
	if err != nil {
		// The error never quotes the seed.
		return nil, fmt.Errorf("NATS credentials file %s holds no valid NKey seed: delete it to have new credentials made at the next start", path)
	}
	if pub, err := kp.PublicKey(); err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return nil, fmt.Errorf("NATS credentials file %s holds no user NKey seed: delete it to have new credentials made at the next start", path)
	}
	return kp, nil
}

// nkeyOption makes a client log in as kp's user. The key stays in memory,
// so reconnects do not depend on the file.
func nkeyOption(kp nkeys.KeyPair) (nats.Option, error) {
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("NATS credentials: %w", err)
	}
	return nats.Nkey(pub, kp.Sign), nil
}

// EmbeddedCredentials returns the option that logs a client in to the
// embedded server whose store is storeDir, read from its credentials file.
// It wraps ErrNoCredentials when no server has made the file yet.
func EmbeddedCredentials(storeDir string) (nats.Option, error) {
	if storeDir == "" {
		storeDir = defaultStoreDir
	}
	kp, err := loadKey(CredentialsPath(storeDir))
	if err != nil {
		return nil, err
	}
	return nkeyOption(kp)
}
