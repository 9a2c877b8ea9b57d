// Package sim is a local Microsoft 365 simulator for tests, the demo and
// users' own integration tests. On loopback it plays Entra ID's token
// endpoint (client-credentials flow, JWT-shaped app-only tokens with tid,
// appid, oid and roles) and Exchange Online's IMAP (implicit TLS, SASL
// XOAUTH2 only), over one in-memory Store of mailboxes that an EWS
// endpoint can share. It refuses what Exchange refuses, with Exchange's
// words, and can inject the faults Exchange and Entra produce.
//
// Start it from Go:
//
//	s, err := sim.Start(ctx, seed, &sim.Options{CADir: dir})
//	ep := s.Endpoints() // authority, IMAP address, CA file for the client config
//
// or as a process with `mailpoller sim -seed seed.yaml`, which prints the
// endpoints as one JSON line. See testdata/seed.yaml for the seed format.
package sim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"gopkg.in/yaml.v3"
)

// Seed is the simulator's starting state.
type Seed struct {
	Tenants   []Tenant      `yaml:"tenants"`
	Apps      []App         `yaml:"apps"`
	Mailboxes []MailboxSeed `yaml:"mailboxes"`
}

// Tenant is an Entra tenant; its mailboxes are the addresses in Domain.
type Tenant struct {
	ID     string `yaml:"id"`
	Domain string `yaml:"domain"`
}

// App is an app registration with its secret, the Exchange application
// permissions admin-consented to it (roles, e.g. IMAP.AccessAsApp,
// full_access_as_app), and the mailboxes it has FullAccess on ("*": all
// of its tenant).
type App struct {
	Tenant        string   `yaml:"tenant"`
	ClientID      string   `yaml:"client_id"`
	Secret        string   `yaml:"secret"`
	SecretExpired bool     `yaml:"secret_expired"`
	Roles         []string `yaml:"roles"`
	Mailboxes     []string `yaml:"mailboxes"`
	// Certificate is the PEM certificate uploaded to the app registration;
	// client assertions signed with its key are accepted (CertificateFile
	// names a PEM file instead, in seed files).
	Certificate     []byte `yaml:"-"`
	CertificateFile string `yaml:"certificate_file"`

	objectID string // the service principal's object id (oid claim)
}

// MailboxSeed is a mailbox with extra folders and initial mail: every .eml
// file of MailDir, then Generate generated messages.
type MailboxSeed struct {
	Address  string   `yaml:"address"`
	Folders  []string `yaml:"folders"`
	MailDir  string   `yaml:"mail_dir"`
	Generate int      `yaml:"generate"`
}

// LoadSeed reads a seed file.
func LoadSeed(path string) (*Seed, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read seed: %w", err)
	}
	var s Seed
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("seed %s: %w", path, err)
	}
	for i := range s.Mailboxes {
		if d := s.Mailboxes[i].MailDir; d != "" && !filepath.IsAbs(d) {
			s.Mailboxes[i].MailDir = filepath.Join(filepath.Dir(path), d)
		}
	}
	return &s, nil
}

// Options configure Start. The zero value is usable.
type Options struct {
	// CADir, if set, receives ca.pem: the CA that signed the servers' certificate.
	CADir string
	// TokenLifetime of issued tokens; default 3599s, as Entra's expires_in.
	TokenLifetime time.Duration
	// Logf receives the simulator's diagnostics; nil discards them.
	Logf func(format string, args ...any)
}

// Endpoints tell clients where the simulator listens.
type Endpoints struct {
	Authority string `json:"authority"` // put in the account's authority:
	TokenURL  string `json:"token_url"` // for tenant <tenant>: authority + "/<tenant>/oauth2/v2.0/token"
	IMAP      string `json:"imap"`      // host:port, implicit TLS
	EWS       string `json:"ews"`       // EWS URL, when an EWS handler is mounted
	Control   string `json:"control"`   // control API base URL
	CAFile    string `json:"ca_file"`   // CA to trust (tls.ca_file), when Options.CADir is set
}

// Sim is a running simulator. Its methods are safe for concurrent use.
type Sim struct {
	seed          *Seed
	store         *Store
	key           []byte
	tokenLifetime time.Duration
	logf          func(string, ...any)

	caPEM   []byte
	caPool  *x509.CertPool
	caFile  string
	imapLn  net.Listener
	imapSrv *imapserver.Server
	httpLn  net.Listener
	httpSrv *http.Server
	mux     *http.ServeMux
	ews     string

	mu            sync.Mutex
	tokenRequests map[string]int
	issued        []string // every access token handed out
	imapSessions  int
	faults        faults
	sessions      map[*session]struct{}
	subs          map[string]subscription // EWS streaming subscriptions
}

type faults struct {
	throttle     map[string]int // mailbox → commands left to refuse
	throttleMs   map[string]int
	notConnected map[string]int
	dropFetch    map[string]int
	refuse       map[string]map[uint32]bool // mailbox → UIDs whose FETCH gets NO
	ewsBusy      map[string]int             // mailbox → EWS requests to answer ErrorServerBusy
	ewsBusyMs    map[string]int
	ews503       map[string]int
	ewsBlocked   map[string]bool // client ids
	token        []TokenFault
	tokenDelay   time.Duration
}

// TokenFault is an error the token endpoint answers instead of a token.
// Status ≥ 500 answers a bare HTTP error; otherwise an Entra JSON error.
type TokenFault struct {
	ClientID string `json:"client_id"` // only this app's requests; "" for any
	Status   int    `json:"status"`
	AADSTS   int    `json:"aadsts"`
	Error    string `json:"error"`
	Text     string `json:"text"`
}

// Start runs a simulator seeded with seed on loopback until ctx ends or
// Close is called.
func Start(ctx context.Context, seed *Seed, opts *Options) (*Sim, error) {
	if opts == nil {
		opts = &Options{}
	}
	s := &Sim{
		seed: seed, store: NewStore(), key: make([]byte, 32), tokenLifetime: opts.TokenLifetime, logf: opts.Logf,
		tokenRequests: map[string]int{}, sessions: map[*session]struct{}{}, subs: map[string]subscription{},
		faults: faults{throttle: map[string]int{}, throttleMs: map[string]int{}, notConnected: map[string]int{}, dropFetch: map[string]int{}, refuse: map[string]map[uint32]bool{}, ewsBusy: map[string]int{}, ewsBusyMs: map[string]int{}, ews503: map[string]int{}, ewsBlocked: map[string]bool{}},
	}
	rand.Read(s.key)
	if s.tokenLifetime <= 0 {
		s.tokenLifetime = 3599 * time.Second
	}
	if s.logf == nil {
		s.logf = func(string, ...any) {}
	}
	for i := range seed.Apps {
		seed.Apps[i].objectID = uuid()
		if f := seed.Apps[i].CertificateFile; f != "" && seed.Apps[i].Certificate == nil {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("seed: app %s certificate: %w", seed.Apps[i].ClientID, err)
			}
			seed.Apps[i].Certificate = b
		}
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	cert, err := s.makeCerts()
	if err != nil {
		return nil, err
	}
	if opts.CADir != "" {
		s.caFile = filepath.Join(opts.CADir, "ca.pem")
		if err := os.WriteFile(s.caFile, s.caPEM, 0o644); err != nil {
			return nil, fmt.Errorf("write CA: %w", err)
		}
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if s.imapLn, err = tls.Listen("tcp", "127.0.0.1:0", tc); err != nil {
		return nil, fmt.Errorf("imap listen: %w", err)
	}
	s.imapSrv = imapserver.New(&imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			sess := &session{sim: s, conn: c}
			s.mu.Lock()
			s.sessions[sess] = struct{}{}
			s.imapSessions++
			s.mu.Unlock()
			return sess, nil, nil
		},
		Caps:   imapCaps,
		Logger: logger{s},
	})
	go s.imapSrv.Serve(s.imapLn)
	if s.httpLn, err = tls.Listen("tcp", "127.0.0.1:0", tc); err != nil {
		s.Close()
		return nil, fmt.Errorf("https listen: %w", err)
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.handleToken)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	s.control(s.mux)
	s.mux.HandleFunc("POST /{path...}", s.handleEWS)
	s.ews = "https://" + s.httpLn.Addr().String() + ewsPath
	s.httpSrv = &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}
	go s.httpSrv.Serve(s.httpLn)
	go func() {
		<-ctx.Done()
		s.Close()
	}()
	return s, nil
}

type logger struct{ s *Sim }

func (l logger) Printf(format string, args ...any) { l.s.logf("imapserver: "+format, args...) }

func (s *Sim) load() error {
	for _, mb := range s.seed.Mailboxes {
		if s.tenantOf(mb.Address) == "" {
			return fmt.Errorf("seed: mailbox %s is in no tenant's domain", mb.Address)
		}
		s.store.AddMailbox(mb.Address)
		for _, f := range mb.Folders {
			if err := s.store.CreateFolder(mb.Address, f); err != nil {
				return fmt.Errorf("seed: %w", err)
			}
		}
		if mb.MailDir != "" {
			files, err := filepath.Glob(filepath.Join(mb.MailDir, "*.eml"))
			if err != nil {
				return err
			}
			for _, f := range files {
				raw, err := os.ReadFile(f)
				if err != nil {
					return fmt.Errorf("seed: %w", err)
				}
				s.store.Deliver(mb.Address, "INBOX", raw, time.Time{})
			}
		}
		for i := 1; i <= mb.Generate; i++ {
			s.store.Deliver(mb.Address, "INBOX", Generate(mb.Address, i), time.Time{})
		}
	}
	return nil
}

// Generate makes a simple test message number n for a mailbox.
func Generate(to string, n int) []byte {
	return []byte(fmt.Sprintf("From: Sender %d <sender%d@example.net>\r\nTo: <%s>\r\nSubject: Generated message %d\r\n"+
		"Date: %s\r\nMessage-ID: <gen-%d-%s>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"+
		"This is generated message %d for %s.\r\n", n, n, to, n, time.Now().UTC().Format(time.RFC1123Z), n, strings.ReplaceAll(to, "@", ".at."), n, to))
}

func (s *Sim) makeCerts() (tls.Certificate, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mailpoller simulator CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	s.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	s.caPool = x509.NewCertPool()
	s.caPool.AddCert(ca)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// Endpoints returns where the simulator listens.
func (s *Sim) Endpoints() Endpoints {
	base := "https://" + s.httpLn.Addr().String()
	return Endpoints{
		Authority: base, TokenURL: base + "/{tenant}/oauth2/v2.0/token", IMAP: s.imapLn.Addr().String(),
		EWS: s.ews, Control: base + "/control", CAFile: s.caFile,
	}
}

// CAPool holds the CA that signed the simulator's certificates.
func (s *Sim) CAPool() *x509.CertPool { return s.caPool }

// CAPEM is that CA in PEM form.
func (s *Sim) CAPEM() []byte { return s.caPEM }

// Store is the simulator's mailbox store.
func (s *Sim) Store() *Store { return s.store }

// Handle mounts a handler on the simulator's HTTPS server (for the EWS
// endpoint). ewsPath, if not empty, is reported in Endpoints().EWS.
func (s *Sim) Handle(pattern string, h http.Handler, ewsPath string) {
	s.mux.Handle(pattern, h)
	if ewsPath != "" {
		s.ews = "https://" + s.httpLn.Addr().String() + ewsPath
	}
}

// Close stops every listener and connection.
func (s *Sim) Close() {
	if s.imapSrv != nil {
		s.imapSrv.Close()
	}
	if s.httpSrv != nil {
		s.httpSrv.Close()
	}
}

func (s *Sim) app(clientID string) *App {
	for i := range s.seed.Apps {
		if strings.EqualFold(s.seed.Apps[i].ClientID, clientID) {
			return &s.seed.Apps[i]
		}
	}
	return nil
}

// ObjectID is the service principal object id the simulator gave an app
// (the token's oid claim).
func (s *Sim) ObjectID(clientID string) string {
	if a := s.app(clientID); a != nil {
		return a.objectID
	}
	return ""
}

func (s *Sim) hasTenant(t string) bool { return s.tenantID(t) != "" }

// tenantID resolves a tenant GUID or domain to the GUID.
func (s *Sim) tenantID(t string) string {
	for _, x := range s.seed.Tenants {
		if strings.EqualFold(x.ID, t) || strings.EqualFold(x.Domain, t) {
			return x.ID
		}
	}
	return ""
}

func (s *Sim) tenantOf(mailbox string) string {
	_, domain, _ := strings.Cut(strings.ToLower(mailbox), "@")
	for _, x := range s.seed.Tenants {
		if strings.EqualFold(x.Domain, domain) {
			return x.ID
		}
	}
	return ""
}

// IMAPConnections counts the IMAP connections accepted so far.
func (s *Sim) IMAPConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.imapSessions
}

// SessionsFor counts the authenticated IMAP sessions open on mailbox now.
func (s *Sim) SessionsFor(mailbox string) int {
	s.mu.Lock()
	all := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		all = append(all, sess)
	}
	s.mu.Unlock()
	n := 0
	for _, v := range all {
		if v.mailbox() == strings.ToLower(mailbox) {
			n++
		}
	}
	return n
}

// ThrottleIMAP makes the next n commands on mailbox's connections fail
// with Exchange's "BAD Request is throttled. Suggested Backoff Time: <ms>
// milliseconds".
func (s *Sim) ThrottleIMAP(mailbox string, n int, backoff time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := strings.ToLower(mailbox)
	s.faults.throttle[m] += n
	s.faults.throttleMs[m] = int(backoff / time.Millisecond)
}

// NotConnected makes the next n commands on mailbox's connections fail
// with "BAD User is authenticated but not connected.".
func (s *Sim) NotConnected(mailbox string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.notConnected[strings.ToLower(mailbox)] += n
}

// DropFetch makes the next n FETCHes on mailbox's connections send half a
// message and drop the connection.
func (s *Sim) DropFetch(mailbox string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.dropFetch[strings.ToLower(mailbox)] += n
}

// RefuseFetch makes every FETCH that includes uid of mailbox's INBOX fail
// with NO, as a server does for a message it cannot render.
func (s *Sim) RefuseFetch(mailbox string, uid uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := strings.ToLower(mailbox)
	if s.faults.refuse[m] == nil {
		s.faults.refuse[m] = map[uint32]bool{}
	}
	s.faults.refuse[m][uid] = true
}

func (s *Sim) refused(mailbox string, uid uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.refuse[mailbox][uid]
}

// FailTokens makes the next n token requests answer f.
func (s *Sim) FailTokens(f TokenFault, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults.token = append(s.faults.token, f)
	}
}

// DelayTokens delays every token response by d (0 turns it off).
func (s *Sim) DelayTokens(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.tokenDelay = d
}

// ExpireSessions ends every IMAP session of mailbox with "* BYE Session
// invalidated - AccessTokenExpired", as Exchange does when a token expires.
func (s *Sim) ExpireSessions(mailbox string) {
	s.mu.Lock()
	all := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		all = append(all, sess)
	}
	s.mu.Unlock()
	for _, v := range all {
		if v.mailbox() == strings.ToLower(mailbox) {
			v.expire()
		}
	}
}

func (s *Sim) imapFault(mailbox string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.throttle[mailbox] > 0 {
		s.faults.throttle[mailbox]--
		return &goimap.Error{Type: goimap.StatusResponseTypeBad,
			Text: "Request is throttled. Suggested Backoff Time: " + strconv.Itoa(s.faults.throttleMs[mailbox]) + " milliseconds"}
	}
	if s.faults.notConnected[mailbox] > 0 {
		s.faults.notConnected[mailbox]--
		return &goimap.Error{Type: goimap.StatusResponseTypeBad, Text: notConnectedText}
	}
	return nil
}

func (s *Sim) takeDropFetch(mailbox string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.dropFetch[mailbox] > 0 {
		s.faults.dropFetch[mailbox]--
		return true
	}
	return false
}

// control mounts the control API:
//
//	POST /control/deliver?mailbox=<addr>&folder=<name>   body: raw message → {"uid":…, "item_id":…}
//	GET  /control/mailboxes/{mailbox}/{folder}           → [{"uid", "item_id", "seen", "size", "flags"}]
//	POST /control/faults/imap?mailbox=&throttle=&backoff_ms=&not_connected=&drop_fetch=&expire=1
//	POST /control/faults/token?count=   body: TokenFault JSON
func (s *Sim) control(mux *http.ServeMux) {
	mux.HandleFunc("POST /control/deliver", func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(io.LimitReader(r.Body, 200<<20))
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		folder := r.URL.Query().Get("folder")
		if folder == "" {
			folder = "INBOX"
		}
		m, err := s.store.Deliver(r.URL.Query().Get("mailbox"), folder, raw, time.Time{})
		if err != nil {
			http.Error(w, err.Error(), 404)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"uid": m.UID, "item_id": m.ItemID})
	})
	mux.HandleFunc("GET /control/mailboxes/{mailbox}/{folder}", func(w http.ResponseWriter, r *http.Request) {
		msgs, err := s.store.Messages(r.PathValue("mailbox"), r.PathValue("folder"))
		if err != nil {
			http.Error(w, err.Error(), 404)
			return
		}
		type row struct {
			UID    uint32   `json:"uid"`
			ItemID string   `json:"item_id"`
			Seen   bool     `json:"seen"`
			Size   int      `json:"size"`
			Flags  []string `json:"flags"`
		}
		out := []row{}
		for _, m := range msgs {
			out = append(out, row{m.UID, m.ItemID, m.Seen(), len(m.Raw), m.Flags})
		}
		json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("POST /control/faults/imap", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		mb := q.Get("mailbox")
		n := func(k string) int { v, _ := strconv.Atoi(q.Get(k)); return v }
		if v := n("throttle"); v > 0 {
			s.ThrottleIMAP(mb, v, time.Duration(n("backoff_ms"))*time.Millisecond)
		}
		if v := n("not_connected"); v > 0 {
			s.NotConnected(mb, v)
		}
		if v := n("drop_fetch"); v > 0 {
			s.DropFetch(mb, v)
		}
		if q.Get("expire") != "" {
			s.ExpireSessions(mb)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /control/faults/token", func(w http.ResponseWriter, r *http.Request) {
		var f TokenFault
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		n, _ := strconv.Atoi(r.URL.Query().Get("count"))
		s.FailTokens(f, max(n, 1))
		w.WriteHeader(http.StatusNoContent)
	})
}
