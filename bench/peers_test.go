package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/internal/dovecottest"
)

// usage runs cmd and returns wall time, CPU seconds (user+sys) and peak
// RSS. The peak is sampled from /proc every 5 ms: ru_maxrss of a child
// counts the parent's pages it shared before exec.
func usage(b *testing.B, cmd *exec.Cmd) (time.Duration, float64, int64) {
	b.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var peak atomic.Int64
	done := make(chan struct{})
	go func() {
		status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
		for {
			if data, err := os.ReadFile(status); err == nil {
				for _, line := range strings.Split(string(data), "\n") {
					if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
						var kb int64
						fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb)
						if kb*1024 > peak.Load() {
							peak.Store(kb * 1024)
						}
					}
				}
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond): // sampling interval
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	wall := time.Since(start)
	if err != nil {
		b.Fatalf("%s: %v\n%s", cmd.Path, err, out.String())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
	return wall, cpu, peak.Load()
}

func report(b *testing.B, f *fixture, wall time.Duration, cpu float64, rss int64) {
	b.ReportMetric(float64(f.n)/wall.Seconds(), "msgs/s")
	b.ReportMetric(float64(f.bytes)/wall.Seconds()/1e6, "MB/s")
	b.ReportMetric(cpu, "cpu-s")
	b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
}

// BenchmarkPeers runs (b) mbsync (Debian isync, default settings, PLAIN
// over TLS) and (c) the mailpoller binary (`run --once`, JetStream file
// storage) on the same Dovecot mailbox, each as its own process, and
// reports wall time, CPU seconds and peak RSS.
func BenchmarkPeers(b *testing.B) {
	n := 300
	if v := os.Getenv("BENCH_N"); v != "" {
		fmt.Sscan(v, &n)
	}
	f := setup(b, n)
	b.Run("mbsync", func(b *testing.B) {
		if _, err := exec.LookPath("mbsync"); err != nil {
			b.Skip("mbsync not installed (apt-get install isync)")
		}
		for b.Loop() {
			dir := f.fresh(b)
			rc := filepath.Join(dir, "mbsyncrc")
			os.MkdirAll(filepath.Join(dir, "mail"), 0o755)
			_, port, _ := splitHostPort(f.srv.Addr)
			host := "localhost" // mbsync checks the certificate's name, not its IP address
			os.WriteFile(rc, []byte(fmt.Sprintf(`IMAPAccount bench
Host %s
Port %s
User bench@contoso.test
Pass %s
SSLType IMAPS
CertificateFile %s

IMAPStore remote
Account bench

MaildirStore local
Path %s/mail/
Inbox %s/mail/INBOX

Channel bench
Far :remote:
Near :local:
Patterns INBOX
Create Near
SyncState *
`, host, port, dovecottest.Password("bench@contoso.test"), f.srv.CAFile, dir, dir)), 0o600)
			wall, cpu, rss := usage(b, exec.Command("mbsync", "-c", rc, "-a"))
			report(b, f, wall, cpu, rss)
		}
	})
	b.Run("mailpoller", func(b *testing.B) {
		bin := filepath.Join(b.TempDir(), "mailpoller")
		if out, err := exec.Command("go", "build", "-o", bin, "github.com/mailpoller/mailpoller/cmd/mailpoller").CombinedOutput(); err != nil {
			b.Fatalf("build: %v\n%s", err, out)
		}
		for b.Loop() {
			cfg := f.config(b)
			path := filepath.Join(b.TempDir(), "config.yaml")
			os.WriteFile(path, []byte(f.yaml), 0o600)
			_ = cfg
			wall, cpu, rss := usage(b, exec.Command(bin, "run", "--once", "-c", path))
			report(b, f, wall, cpu, rss)
		}
	})
}
