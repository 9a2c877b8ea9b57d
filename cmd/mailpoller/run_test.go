package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/internal/wait"
	"github.com/mailpoller/mailpoller/sim"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// natsDownConfig writes a config whose NATS at natsAddr is not running
// yet, with one account on the simulator and HTTP on httpAddr.
func natsDownConfig(t *testing.T, s *sim.Sim, natsAddr, httpAddr string) string {
	t.Helper()
	ep := s.Endpoints()
	cfg := fmt.Sprintf(`nats: {url: "nats://%s"}
http: {listen: %q}
accounts:
  - name: support
    tenant_id: %s
    client_id: %s
    client_secret: good-secret-value
    authority: %s
    server: %s
    tls: {ca_file: %s}
    mailbox: support@contoso.test
`, natsAddr, httpAddr, ckTenant, ckGood, ep.Authority, ep.IMAP, ep.CAFile)
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRunWaitsForNATS: with NATS down at start, run serves /healthz at
// once and /readyz as not ready with the cause, logs the URL and the
// cause, keeps retrying, and turns ready once NATS is up.
func TestRunWaitsForNATS(t *testing.T) {
	s := startCheckSim(t)
	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	cfg, err := config.Load(natsDownConfig(t, s, natsAddr, httpAddr))
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuf
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- runPoller(ctx, cfg, newLogger(cfg.Log, &logs), pollOptions{}, &logs) }()

	base := "http://" + httpAddr
	wait.For(t, 10*time.Second, "/healthz ok while NATS is down", func() bool { code, _ := get(base + "/healthz"); return code == 200 })
	wait.For(t, 10*time.Second, "/readyz names the cause", func() bool {
		code, body := get(base + "/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "NATS not connected yet") && strings.Contains(body, "connection refused")
	})
	wait.For(t, 10*time.Second, "the log names URL and cause", func() bool {
		l := logs.String()
		return strings.Contains(l, "NATS not reachable; retrying") && strings.Contains(l, "nats://"+natsAddr) && strings.Contains(l, "connection refused")
	})
	select {
	case code := <-done:
		t.Fatalf("run exited %d while NATS was down:\n%s", code, logs.String())
	default:
	}

	host, portStr, _ := net.SplitHostPort(natsAddr)
	port, _ := strconv.Atoi(portStr)
	ns, err := server.NewServer(&server.Options{Host: host, Port: port, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	defer ns.Shutdown()
	wait.For(t, 20*time.Second, "/readyz ready once NATS is up", func() bool { code, _ := get(base + "/readyz"); return code == 200 })
	if code, body := get(base + "/metrics"); code != 200 || !strings.Contains(body, `mailpoller_stored_bytes{store="events"}`) || !strings.Contains(body, `mailpoller_stored_bytes{store="blobs"}`) {
		t.Errorf("/metrics (%d) lacks mailpoller_stored_bytes:\n%s", code, body)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("run exit %d:\n%s", code, logs.String())
	}
}

// TestRunOnceGivesUpOnNATS: `run --once --nats-wait 1s` with NATS down
// exits 1 after about that long with one error line naming the URL and
// the cause.
func TestRunOnceGivesUpOnNATS(t *testing.T) {
	s := startCheckSim(t)
	natsAddr := freeAddr(t)
	path := natsDownConfig(t, s, natsAddr, freeAddr(t))
	var out, errOut syncBuf
	start := time.Now()
	code := dispatch([]string{"run", "-c", path, "--once", "--nats-wait", "1s"}, &out, &errOut)
	took := time.Since(start)
	if code != 1 {
		t.Fatalf("exit %d:\n%s", code, errOut.String())
	}
	if took > 5*time.Second {
		t.Errorf("gave up after %s, want about 1s", took)
	}
	var giveUp []string
	for _, l := range strings.Split(errOut.String(), "\n") {
		if strings.Contains(l, "giving up") {
			giveUp = append(giveUp, l)
		}
	}
	if len(giveUp) != 1 || !strings.Contains(giveUp[0], "nats://"+natsAddr) || !strings.Contains(giveUp[0], "connection refused") || !strings.Contains(giveUp[0], "waited=1s") {
		t.Fatalf("give-up lines %q in:\n%s", giveUp, errOut.String())
	}
}
