// Package sim is a local Microsoft 365 simulator for tests, the demo and
// users' own integration tests. On loopback it plays Entra ID's token
// endpoint (client-credentials flow, JWT-shaped app-only tokens with aud,
// tid, appid, oid and roles), Exchange Online's IMAP (implicit TLS, SASL
// XOAUTH2 only), Exchange Online's EWS and Microsoft Graph's mail API
// (under /v1.0, graph.go), over one in-memory Store of
// mailboxes. It refuses what Exchange refuses, with Exchange's words, and
// can inject the faults Exchange and Entra produce.
//
// Each protocol is its own server with its own faults: Tokens (token.go),
// IMAP (imap.go), EWS (ewsserver.go) and Graph (graph.go); Sim starts them over one Store
// and one CA.
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
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Options configure Start. The zero value is usable.
type Options struct {
	// CADir, if set, receives ca.pem: the CA that signed the servers' certificate.
	CADir string
	// IMAPListen and HTTPListen are the host:port the IMAP server and the
	// HTTPS server (token endpoint, EWS, control API) listen on; empty
	// means 127.0.0.1 with a free port.
	IMAPListen string
	HTTPListen string
}

// listenAddr is addr, or 127.0.0.1 with a free port when addr is empty.
func listenAddr(addr string) string {
	if addr == "" {
		return "127.0.0.1:0"
	}
	return addr
}

// Endpoints tell clients where the simulator listens.
type Endpoints struct {
	Authority string `json:"authority"` // put in the account's authority:
	TokenURL  string `json:"token_url"` // for tenant <tenant>: authority + "/<tenant>/oauth2/v2.0/token"
	IMAP      string `json:"imap"`      // host:port, implicit TLS
	EWS       string `json:"ews"`       // EWS URL
	Graph     string `json:"graph"`     // Microsoft Graph base URL (…/v1.0)
	Control   string `json:"control"`   // control API base URL
	CAFile    string `json:"ca_file"`   // CA to trust (tls.ca_file), when Options.CADir is set
}

// Sim is a running simulator: the token endpoint, the control API and EWS
// on one HTTPS listener, IMAP on another. Its methods are safe for
// concurrent use.
type Sim struct {
	store  *Store
	dir    *directory
	ca     *authority
	caFile string

	tokens *TokenServer
	imap   *IMAPServer
	ews    *EWSServer
	graph  *GraphServer

	httpLn  net.Listener
	httpSrv *http.Server
}

// Start runs a simulator seeded with seed on loopback until ctx ends or
// Close is called.
func Start(ctx context.Context, seed *Seed, opts *Options) (*Sim, error) {
	if opts == nil {
		opts = &Options{}
	}
	dir, err := newDirectory(seed)
	if err != nil {
		return nil, err
	}
	s := &Sim{store: newStore(), dir: dir}
	if err := dir.fill(s.store, seed); err != nil {
		return nil, err
	}
	if s.ca, err = newAuthority(); err != nil {
		return nil, fmt.Errorf("simulator CA: %w", err)
	}
	if opts.CADir != "" {
		s.caFile = filepath.Join(opts.CADir, "ca.pem")
		if err := os.WriteFile(s.caFile, s.ca.pem, 0o644); err != nil {
			return nil, fmt.Errorf("write CA: %w", err)
		}
	}
	tc := s.ca.serverTLS()
	s.tokens = newTokenServer(dir)
	s.ews = newEWSServer(s.store, dir, s.tokens)
	s.graph = newGraphServer(s.store, dir, s.tokens)
	if s.imap, err = startIMAP(s.store, dir, s.tokens, tc, listenAddr(opts.IMAPListen)); err != nil {
		return nil, err
	}
	if s.httpLn, err = tls.Listen("tcp", listenAddr(opts.HTTPListen), tc); err != nil {
		s.Close()
		return nil, fmt.Errorf("https listen %s: %w", listenAddr(opts.HTTPListen), err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /{tenant}/oauth2/v2.0/token", s.tokens)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	s.control(mux)
	mux.Handle("POST /{path...}", s.ews)
	for _, p := range []string{"GET /{path...}", "PATCH /{path...}", "DELETE /{path...}", "POST /users/{path...}", "POST /$batch", "POST /subscriptions"} {
		method, path, _ := strings.Cut(p, " ")
		mux.Handle(method+" "+graphPrefix+path, s.graph)
	}
	s.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.httpSrv.Serve(s.httpLn)
	go func() {
		<-ctx.Done()
		s.Close()
	}()
	return s, nil
}

// Endpoints returns where the simulator listens.
func (s *Sim) Endpoints() Endpoints {
	base := "https://" + s.httpLn.Addr().String()
	return Endpoints{
		Authority: base, TokenURL: base + "/{tenant}/oauth2/v2.0/token", IMAP: s.imap.addr(),
		EWS: base + ewsPath, Graph: base + graphPrefix, Control: base + "/control", CAFile: s.caFile,
	}
}

// CAPool holds the CA that signed the simulator's certificates.
func (s *Sim) CAPool() *x509.CertPool { return s.ca.pool }

// CAPEM is that CA in PEM form.
func (s *Sim) CAPEM() []byte { return s.ca.pem }

// Store is the simulator's mailbox store, shared by every protocol.
func (s *Sim) Store() *Store { return s.store }

// Tokens is the simulator's Entra token endpoint.
func (s *Sim) Tokens() *TokenServer { return s.tokens }

// IMAP is the simulator's Exchange IMAP server.
func (s *Sim) IMAP() *IMAPServer { return s.imap }

// EWS is the simulator's Exchange EWS endpoint.
func (s *Sim) EWS() *EWSServer { return s.ews }

// Graph is the simulator's Microsoft Graph endpoint.
func (s *Sim) Graph() *GraphServer { return s.graph }

// Close stops every listener and connection.
func (s *Sim) Close() {
	if s.imap != nil {
		s.imap.stop()
	}
	if s.httpSrv != nil {
		s.httpSrv.Close()
	}
	if s.graph != nil {
		s.graph.stopSubs()
	}
}

// ObjectID is the service principal object id the simulator gave an app
// (the token's oid claim).
func (s *Sim) ObjectID(clientID string) string {
	if a := s.dir.app(clientID); a != nil {
		return a.objectID
	}
	return ""
}

// The methods below forward to one protocol's server, for the callers
// written before the servers were split.

// Verify checks a token the simulator issued for Exchange Online (for test
// harnesses such as an introspection endpoint in front of another IMAP
// server): s.Tokens().Verify(token, "https://outlook.office365.com").
func (s *Sim) Verify(token string) (*Claims, error) { return s.tokens.Verify(token, exchangeResource) }

// LeakedToken is s.Tokens().Leaked.
func (s *Sim) LeakedToken(text string) string { return s.tokens.Leaked(text) }

// TokenRequests is s.Tokens().Requests.
func (s *Sim) TokenRequests(clientID string) int { return s.tokens.Requests(clientID) }

// FailTokens is s.Tokens().Fail.
func (s *Sim) FailTokens(f TokenFault, n int) { s.tokens.Fail(f, n) }

// IMAPConnections is s.IMAP().Connections.
func (s *Sim) IMAPConnections() int { return s.imap.Connections() }

// SessionsFor is s.IMAP().Sessions.
func (s *Sim) SessionsFor(mailbox string) int { return s.imap.Sessions(mailbox) }

// StaleCommands is s.IMAP().StaleCommands.
func (s *Sim) StaleCommands(mailbox string) int { return s.imap.StaleCommands(mailbox) }

// ThrottleIMAP is s.IMAP().Throttle.
func (s *Sim) ThrottleIMAP(mailbox string, n int, backoff time.Duration) {
	s.imap.Throttle(mailbox, n, backoff)
}

// NotConnected is s.IMAP().NotConnected.
func (s *Sim) NotConnected(mailbox string, n int) { s.imap.NotConnected(mailbox, n) }

// DropFetch is s.IMAP().DropFetch.
func (s *Sim) DropFetch(mailbox string, n int) { s.imap.DropFetch(mailbox, n) }

// RefuseFetch is s.IMAP().RefuseFetch.
func (s *Sim) RefuseFetch(mailbox string, uid uint32) { s.imap.RefuseFetch(mailbox, uid) }

// ExpireSessions is s.IMAP().ExpireSessions.
func (s *Sim) ExpireSessions(mailbox string) { s.imap.ExpireSessions(mailbox) }

// EWSBusy is s.EWS().Busy.
func (s *Sim) EWSBusy(mailbox string, n int, backoff time.Duration) { s.ews.Busy(mailbox, n, backoff) }

// BlockEWS is s.EWS().Block.
func (s *Sim) BlockEWS(clientID string) { s.ews.Block(clientID) }

// ExpireSubscriptions is s.EWS().ExpireSubscriptions.
func (s *Sim) ExpireSubscriptions() int { return s.ews.ExpireSubscriptions() }
