package publish

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/internal/logtest"
	"github.com/mailpoller/mailpoller/internal/wait"
	"github.com/mailpoller/mailpoller/message"
)

// smallDisk mounts a 16 MiB tmpfs on a fresh directory for the test: a
// filesystem that really fills up. It skips the test where mounting is not
// allowed (not root, or no CAP_SYS_ADMIN).
func smallDisk(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("needs a small filesystem to fill, and `mount -t tmpfs` failed (run the tests as root to include this one): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file in dir until the filesystem has no space left.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			return path
		}
	}
}

// TestEmbeddedRecoversAfterDiskFull fills the embedded server's disk for
// real: publishes (events, blobs, checkpoints) fail while it is full, the
// server's own complaint and one warning are logged, and once the filler
// is deleted publishing works again without a restart of anything, with
// the event stored before the fill still there.
func TestEmbeddedRecoversAfterDiskFull(t *testing.T) {
	disk := smallDisk(t)
	var logs logtest.Buffer
	c := connectEmbedded(t, config.Embedded{Listen: "127.0.0.1:0", StoreDir: filepath.Join(disk, "nats")}, debugLog(&logs))
	o := Origin{Account: "support", Mailbox: "support@contoso.test", Folder: "INBOX", Protocol: "imap"}
	subject := Subject(c.Prefix(), o.Account, o.Mailbox)
	publish := func(id string, timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		o.ServerID = id
		raw := []byte("Subject: " + id + "\r\nMessage-ID: <" + id + "@contoso.test>\r\n\r\nbody\r\n")
		if _, err := c.Publish(ctx, subject, NewEvent(o, &message.Message{Subject: id}, time.Now()), raw); err != nil {
			return err
		}
		return c.SaveState(ctx, StateKey(o.Account, o.Mailbox, o.Folder), []byte(`{"last_uid":`+id[2:]+`}`))
	}
	if err := publish(uid(1), 5*time.Second); err != nil {
		t.Fatalf("publish before the disk is full: %v", err)
	}

	filler := fill(t, disk)
	// Small writes may still fit in the store's last page; a few
	// publishes in, the disk refuses them.
	stored, failed := 1, 0
	for id := 2; failed == 0; id++ {
		if id > 200 {
			t.Fatal("200 publishes on a full disk reported success")
		}
		if err := publish(uid(id), time.Second); err != nil {
			failed = id
		} else {
			stored++
		}
	}
	if err := publish(uid(failed+1), time.Second); err == nil {
		t.Fatal("publish on a full disk reported success after one had failed")
	}
	wait.For(t, 10*time.Second, "the storage failure is logged", func() bool {
		return strings.Contains(logs.String(), "JetStream storage failed")
	})
	if got := logs.String(); !strings.Contains(got, "no space left on device") || !strings.Contains(got, "component=nats-server") {
		t.Fatalf("the embedded server's own error is not in the log:\n%s", got)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 20*time.Second, "publishing works again after the disk has room", func() bool {
		return publish(uid(failed), time.Second) == nil
	})
	if err := publish(uid(failed+1), 5*time.Second); err != nil {
		t.Fatalf("publish after recovery: %v", err)
	}
	stored += 2
	last := failed + 1

	ctx := context.Background()
	st, err := c.JetStream().Stream(ctx, c.Stream())
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Msgs; n != uint64(stored) {
		t.Fatalf("stream holds %d events after recovery, want %d (each acknowledged once, those from before the fill included)", n, stored)
	}
	if cp, err := c.LoadState(ctx, StateKey(o.Account, o.Mailbox, o.Folder)); err != nil || string(cp) != `{"last_uid":`+strconv.Itoa(last)+`}` {
		t.Fatalf("checkpoint after recovery = %s, %v", cp, err)
	}
	got := logs.String()
	for _, want := range []string{"JetStream storage failed", "JetStream restarted after the storage failure"} {
		if n := strings.Count(got, want); n != 1 {
			t.Errorf("%q logged %d times, want once:\n%s", want, n, got)
		}
	}
}

func uid(n int) string { return "1:" + strconv.Itoa(n) }

// TestStorageFailureLines: the nats-server v2.15 lines that mean JetStream
// must be restarted, and lines that do not.
func TestStorageFailureLines(t *testing.T) {
	for line, want := range map[string]bool{
		"Filestore [MAIL] Critical write error: write /data/1.blk: no space left on device":             true,
		"JetStream stream '$G > MAIL' critical write error: write /data/1.blk: no space left on device": true,
		"JetStream out of file resources, will be DISABLED":                                             true,
		"JetStream out of space, will be DISABLED":                                                      true,
		"Filesystem permission denied while writing msg, disabling JetStream: open /data: denied":       true,
		"Ignoring non-write error: unexpected EOF":                                                      false,
		"127.0.0.1:38842 - cid:15 - authentication error":                                               false,
		"JetStream failed to store a msg on stream '$G > MAIL': maximum messages exceeded":              false,
	} {
		if got := storageFailure(line); got != want {
			t.Errorf("storageFailure(%q) = %v, want %v", line, got, want)
		}
	}
}
