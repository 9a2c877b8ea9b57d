package bench

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"

	"github.com/mailpoller/mailpoller/internal/dovecottest"
	"github.com/mailpoller/mailpoller/internal/relay"
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
		for {
			if rss := vmRSS(cmd.Process.Pid); rss > peak.Load() {
				peak.Store(rss)
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

// TestRawFetchProcess is (a) as a process of its own, for
// BenchmarkThroughput: it runs only when BENCH_RAW_FETCH names the server.
func TestRawFetchProcess(t *testing.T) {
	addr := os.Getenv("BENCH_RAW_FETCH")
	if addr == "" {
		t.Skip("a helper process of BenchmarkThroughput")
	}
	pem, err := os.ReadFile(os.Getenv("BENCH_CA_FILE"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	n, err := rawFetch(addr, roots, os.Getenv("BENCH_TOKEN"), func(lit goimap.LiteralReader) { io.Copy(io.Discard, lit) })
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("fetched", n)
}

// run is one measured run of a row.
type run struct {
	wall time.Duration
	cpu  float64
	rss  int64
}

// BenchmarkThroughput runs, on one Dovecot mailbox and in one go, (a) a raw
// go-imap UID FETCH 1:* BODY.PEEK[] that discards the bytes, (b) mbsync
// (Debian isync, default settings, PLAIN over TLS) syncing to a fresh
// Maildir, and (c) the mailpoller binary (`run --once`, JetStream file
// storage), each as a process of its own, BENCH_ROUNDS times (default 3)
// in turn, and prints the table of medians with mailpoller's ratios.
func BenchmarkThroughput(b *testing.B) {
	n, rounds := 3000, 3
	if v := os.Getenv("BENCH_N"); v != "" {
		fmt.Sscan(v, &n)
	}
	if v := os.Getenv("BENCH_ROUNDS"); v != "" {
		fmt.Sscan(v, &rounds)
	}
	if _, err := exec.LookPath("mbsync"); err != nil {
		b.Skip("mbsync not installed (apt-get install isync)")
	}
	f := setup(b, n)
	bin := filepath.Join(b.TempDir(), "mailpoller")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/mailpoller/mailpoller/cmd/mailpoller").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	mailpoller := func(more string) func() *exec.Cmd {
		return func() *exec.Cmd {
			f.configWith(b, more)
			path := filepath.Join(f.out, "config.yaml")
			if err := os.WriteFile(path, []byte(f.yaml), 0o600); err != nil {
				b.Fatal(err)
			}
			return exec.Command(bin, "run", "--once", "-c", path)
		}
	}
	rows := []struct {
		name string
		cmd  func() *exec.Cmd
	}{
		{"(a) raw go-imap `UID FETCH 1:* BODY.PEEK[]`, bytes discarded", func() *exec.Cmd {
			f.fresh(b)
			tok, _ := imapToken(b, f)
			cmd := exec.Command(self, "-test.run", "^TestRawFetchProcess$")
			cmd.Env = append(os.Environ(), "BENCH_RAW_FETCH="+f.target(), "BENCH_CA_FILE="+f.srv.CAFile, "BENCH_TOKEN="+tok)
			return cmd
		}},
		{"(b) `mbsync` (isync, defaults) to a fresh Maildir", func() *exec.Cmd {
			return exec.Command("mbsync", "-c", f.mbsyncrc(b), "-a")
		}},
		{"(c) `mailpoller run --once`, `store_raw: always`", mailpoller("")},
		{"(d) `mailpoller run --once`, `store_raw: never`", mailpoller("store_raw: never")},
	}
	// Two distances in one run: loopback, and a 20 ms round trip through a
	// relay that delays each direction by 10 ms without limiting bandwidth.
	relayed, err := relay.StartDelayed(f.srv.Addr, 10*time.Millisecond)
	if err != nil {
		b.Fatal(err)
	}
	defer relayed.Close()
	distances := []struct{ name, addr string }{{"loopback", ""}, {"20 ms round trip", relayed.Addr()}}
	runs := make([][][]run, len(distances))
	for d := range distances {
		runs[d] = make([][]run, len(rows))
	}
	for b.Loop() {
		for d, dist := range distances {
			f.addr = dist.addr
			for r := 0; r < rounds; r++ {
				for i, row := range rows {
					wall, cpu, rss := usage(b, row.cmd())
					runs[d][i] = append(runs[d][i], run{wall, cpu, rss})
				}
			}
		}
	}
	f.addr = ""
	rate := func(r run) float64 { return float64(f.n) / r.wall.Seconds() }
	var t strings.Builder
	fmt.Fprintf(&t, "%d messages, %.1f MB; medians of %d runs each\n", f.n, float64(f.bytes)/1e6, rounds)
	for d, dist := range distances {
		med := make([]run, len(rows))
		for i, rs := range runs[d] {
			med[i] = median(rs)
		}
		fmt.Fprintf(&t, "\n%s\n\n| what | msgs/s | MB/s | CPU s | CPU s per GB | peak RSS | (c) ÷ this |\n|---|---:|---:|---:|---:|---:|---:|\n", dist.name)
		for i, row := range rows {
			fmt.Fprintf(&t, "| %s | %.0f | %.0f | %.2f | %.2f | %.0f MiB | %.2f |\n", row.name, rate(med[i]),
				float64(f.bytes)/med[i].wall.Seconds()/1e6, med[i].cpu, med[i].cpu/(float64(f.bytes)/1e9),
				float64(med[i].rss)/(1<<20), rate(med[2])/rate(med[i]))
		}
		unit := strings.NewReplacer(" ", "-").Replace(dist.name)
		b.ReportMetric(rate(med[2])/rate(med[0]), "x-raw-"+unit)
		b.ReportMetric(rate(med[2])/rate(med[1]), "x-mbsync-"+unit)
		b.ReportMetric(rate(med[3])/rate(med[0]), "never-x-raw-"+unit)
		b.ReportMetric(rate(med[2]), "msgs/s-"+unit)
		b.ReportMetric(float64(max(med[2].rss, med[3].rss))/(1<<20), "peak-RSS-MiB-"+unit)
	}
	fmt.Println(t.String())
}

// median is the run of median wall time, with the median CPU time and the
// highest peak RSS of all.
func median(rs []run) run {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b run) int { return int(a.wall - b.wall) })
	m := s[len(s)/2]
	cpus := make([]float64, len(s))
	for i, r := range s {
		cpus[i] = r.cpu
		m.rss = max(m.rss, r.rss)
	}
	slices.Sort(cpus)
	m.cpu = cpus[len(cpus)/2]
	return m
}

// mbsyncrc writes mbsync's config for a fresh Maildir and returns its path.
func (f *fixture) mbsyncrc(b *testing.B) string {
	dir := f.fresh(b)
	rc := filepath.Join(dir, "mbsyncrc")
	os.MkdirAll(filepath.Join(dir, "mail"), 0o755)
	_, port, _ := splitHostPort(f.target())
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
	return rc
}
