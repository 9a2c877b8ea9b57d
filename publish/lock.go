package publish

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is the file in nats.embedded.store_dir that the process running
// the embedded server holds an exclusive flock on, with its pid inside.
const LockFile = "mailpoller.lock"

// ErrStoreInUse means another process runs an embedded server on the same
// store directory. It is a configuration error: retrying does not help
// until that process ends or this one gets its own store_dir.
var ErrStoreInUse = errors.New("store directory in use")

// storeLock is a held flock on a store directory's LockFile.
type storeLock struct{ f *os.File }

// lockStore makes dir if needed and takes the flock on its LockFile
// without waiting; it wraps ErrStoreInUse when another process holds it.
// The kernel drops the lock when the process dies, so a crash leaves no
// stale lock behind.
func lockStore(dir string) (*storeLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded NATS server: make store directory (nats.embedded.store_dir): %w", err)
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS server: open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		holder := "another process"
		if pid := strings.TrimSpace(string(b[:n])); pid != "" {
			holder = "process " + pid
		}
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %w: %s already runs an embedded NATS server on store_dir %s (lock %s): stop it, or give this one its own nats.embedded.store_dir",
				ErrEmbeddedStart, ErrStoreInUse, holder, dir, path)
		}
		return nil, fmt.Errorf("embedded NATS server: lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &storeLock{f: f}, nil
}

// release drops the lock. The file stays: removing it would let a third
// process lock a new file while a second still waits on the old one.
func (l *storeLock) release() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}
