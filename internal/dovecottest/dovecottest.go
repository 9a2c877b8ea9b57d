// Package dovecottest runs a real Dovecot IMAP server with SASL XOAUTH2 for
// mailpoller's tests. It is used by tests only.
//
// Start renders a standalone Dovecot 2.3 config (nothing from /etc/dovecot)
// into a fresh directory, generates a TLS certificate, serves an OAuth 2.0
// introspection endpoint in-process, and runs `dovecot -F` until the test
// ends. Bearer tokens are judged by Options.Introspect.
//
// App-only tokens: Exchange accepts one token for every mailbox the app
// may open, while Dovecot compares the SASL user= with the username the
// introspection endpoint returns. The oauth2 passdb therefore compares the
// domain only (username_format = %Ld), and Introspect returns any address
// of the granted domain. The mailbox opened is still the one named by
// user=: the userdb is looked up by the SASL user.
//
// Facts that shape the config (from the verified recipe in
// shared/testing/dovecot): the introspection endpoint must answer 200 with
// {"active": false} for a bad token (a 4xx becomes a temporary failure);
// auth_failure_delay = 0 and a disabled anvil penalty keep failed logins
// fast; mail processes run as the mail user; a refused XOAUTH2 gets a
// "+ <base64 JSON>" continuation before the tagged NO.
package dovecottest

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailpoller/mailpoller/internal/testcert"
)

// Options describe the server to start.
type Options struct {
	// Users are the mailbox addresses. Each also gets the password
	// "pass-<address>" for the harness's own PLAIN logins.
	Users []string
	// Introspect judges a bearer token: the username to report (any address
	// of the mailbox's domain) and whether the token is active.
	Introspect func(token string) (username string, active bool)
	// MasterUser, when set, is a Dovecot master user (password
	// Password(MasterUser)) that opens any user's mailbox, logging in as
	// "<user>*<master>" or with PLAIN's authorization identity.
	MasterUser string
	// Mechanisms replaces the SASL mechanisms offered (default
	// "plain login xoauth2 oauthbearer").
	Mechanisms string
}

// Server is a running Dovecot.
type Server struct {
	Addr      string // implicit TLS host:port
	PlainAddr string // plaintext host:port (for the harness's PLAIN logins)
	CAFile    string // the self-signed certificate to trust
	CAPool    *x509.CertPool
	Dir       string
}

// Available reports whether Dovecot can be run here.
func Available() error {
	if _, err := exec.LookPath("dovecot"); err != nil {
		return fmt.Errorf("dovecot is not installed (apt-get install dovecot-imapd): %w", err)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("running Dovecot standalone needs root")
	}
	return nil
}

// Require skips the test when Dovecot is missing, or fails it when the
// environment says CI=true: the real-server tests are mandatory in CI.
func Require(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Dovecot test required in CI: %v", err)
		}
		t.Skipf("skipping the Dovecot test: %v", err)
	}
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Password is the harness's PLAIN password for a user.
func Password(user string) string { return "pass-" + strings.ToLower(user) }

// Start runs Dovecot for the test.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	Require(t)
	dir, err := os.MkdirTemp("/var/tmp", "mailpoller-dovecot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if os.Getenv("KEEP_DOVECOT") == "" {
			os.RemoveAll(dir)
		}
	})
	os.Chmod(dir, 0o755)
	for _, d := range []string{"run", "state", "log", "ssl", "mail"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Mail lives under mail/, owned by the mail user (uid/gid 8 on Debian).
	os.Chown(filepath.Join(dir, "mail"), 8, 8)

	tc, err := testcert.New("localhost")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, pool := tc.CertPEM, tc.KeyPEM, tc.Pool
	caFile := filepath.Join(dir, "ssl", "cert.pem")
	os.WriteFile(caFile, certPEM, 0o644)
	os.WriteFile(filepath.Join(dir, "ssl", "key.pem"), keyPEM, 0o600)

	intro := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		tok := r.PostForm.Get("token")
		if tok == "" {
			tok = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		}
		resp := map[string]any{"active": false}
		if user, ok := opts.Introspect(tok); ok {
			resp = map[string]any{"active": true, "username": user, "scope": "IMAP.AccessAsApp"}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp)
	}))
	t.Cleanup(intro.Close)

	var users strings.Builder
	for _, u := range opts.Users {
		fmt.Fprintf(&users, "%s:{PLAIN}%s::::::\n", strings.ToLower(u), Password(u))
	}
	os.WriteFile(filepath.Join(dir, "users"), []byte(users.String()), 0o644)
	master := ""
	if opts.MasterUser != "" {
		os.WriteFile(filepath.Join(dir, "masters"), []byte(fmt.Sprintf("%s:{PLAIN}%s::::::\n", strings.ToLower(opts.MasterUser), Password(opts.MasterUser))), 0o644)
		master = "auth_master_user_separator = *\npassdb {\n  driver = passwd-file\n  master = yes\n  pass = yes\n  mechanisms = plain login\n  args = scheme=PLAIN username_format=%Lu " + dir + "/masters\n}\n"
	}
	mechs := opts.Mechanisms
	if mechs == "" {
		mechs = "plain login xoauth2 oauthbearer"
	}

	imapPort, imapsPort := freePort(t), freePort(t)
	conf := strings.NewReplacer("@DIR@", dir, "@IMAP_PORT@", fmt.Sprint(imapPort), "@IMAPS_PORT@", fmt.Sprint(imapsPort),
		"@MECHANISMS@", mechs, "@MASTER@\n", master).Replace(dovecotConf)
	oauth := strings.NewReplacer("@URL@", intro.URL+"/introspect").Replace(oauth2Conf)
	confPath := filepath.Join(dir, "dovecot.conf")
	os.WriteFile(confPath, []byte(conf), 0o644)
	os.WriteFile(filepath.Join(dir, "dovecot-oauth2.conf.ext"), []byte(oauth), 0o644)

	cmd := exec.Command("dovecot", "-F", "-c", confPath)
	logFile, _ := os.Create(filepath.Join(dir, "log", "stdout.log"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dovecot: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		logFile.Close()
	})
	s := &Server{
		Addr: fmt.Sprintf("127.0.0.1:%d", imapsPort), PlainAddr: fmt.Sprintf("127.0.0.1:%d", imapPort),
		CAFile: caFile, CAPool: pool, Dir: dir,
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "log", "dovecot.log"))
			out, _ := os.ReadFile(filepath.Join(dir, "log", "stdout.log"))
			t.Fatalf("dovecot exited at start:\n%s\n%s", out, log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "log", "dovecot.log"))
			t.Fatalf("dovecot did not listen on %s within 15s:\n%s", s.Addr, log)
		}
		time.Sleep(50 * time.Millisecond) // polling the port under a deadline
	}
	return s
}

// Log returns Dovecot's log so far (for failure messages).
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "log", "dovecot.log"))
	return string(b)
}

const dovecotConf = `# mailpoller test instance (Dovecot 2.3), rendered by internal/dovecottest
protocols = imap
listen = 127.0.0.1
instance_name = mailpoller-test-@IMAPS_PORT@
base_dir = @DIR@/run
state_dir = @DIR@/state
log_path = @DIR@/log/dovecot.log
info_log_path = @DIR@/log/dovecot.log
debug_log_path = @DIR@/log/dovecot.log
auth_verbose = yes
mail_uid = mail
mail_gid = mail
first_valid_uid = 8
first_valid_gid = 8
mail_location = maildir:~/Maildir
disable_plaintext_auth = no
auth_mechanisms = @MECHANISMS@
auth_username_format = %Lu
auth_failure_delay = 0
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
ssl = yes
ssl_cert = <@DIR@/ssl/cert.pem
ssl_key = <@DIR@/ssl/key.pem
ssl_min_protocol = TLSv1.2
@MASTER@
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%Lu @DIR@/users
  mechanisms = plain login
}
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = @DIR@/dovecot-oauth2.conf.ext
}
userdb {
  driver = passwd-file
  args = username_format=%Lu @DIR@/users
  default_fields = uid=mail gid=mail home=@DIR@/mail/%d/%n
}
protocol imap {
  mail_max_userip_connections = 100
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = @IMAP_PORT@
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = @IMAPS_PORT@
    ssl = yes
  }
}
`

const oauth2Conf = `introspection_mode = post
introspection_url = @URL@
username_attribute = username
# compare only the domain: one app-only token serves every mailbox of the tenant
username_format = %Ld
active_attribute = active
active_value = true
timeout_msecs = 5000
`
