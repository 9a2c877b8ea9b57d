// Package publish owns mailpoller's side of NATS: it connects to the user's
// cluster or starts an embedded server, makes sure the stream, the checkpoint
// KV bucket and the blob object store exist, and publishes events with
// their id as Nats-Msg-Id so JetStream drops repeats.
package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/internal/redact"
)

// Bucket names. They are part of the state contract (DESIGN.md §5).
const (
	StateBucket = "mailpoller-state"
	BlobBucket  = "mailpoller-blobs"
)

// Conn is a connection to NATS with the JetStream resources mailpoller uses.
// It is safe for concurrent use.
type Conn struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	state    jetstream.KeyValue
	blobs    jetstream.ObjectStore
	emb      *embedded // embedded server, nil when using a cluster
	log      *slog.Logger
	stream   string
	prefix   string
	replicas int // of the stream and buckets mailpoller creates
	keep     config.Retention

	writingMu sync.Mutex
	writing   map[string]chan struct{} // blob keys being written, closed when done

	restarting  atomic.Bool // the embedded server's JetStream is being restarted: heal nothing
	healMu      sync.Mutex  // one heal at a time; guards the fields below and replicas after Connect
	lastHeal    time.Time
	healFailing bool          // the last heal could not reach the stream
	leaseTTL    time.Duration // of the lease bucket, once Leases made it
}

// Connect connects to cfg.URL, or starts an embedded JetStream server when
// the URL is empty, and ensures the stream, KV bucket and object store exist.
// It is ConnectNotify without a callback.
func Connect(ctx context.Context, cfg config.NATS, log *slog.Logger) (*Conn, error) {
	return ConnectNotify(ctx, cfg, log, nil)
}

// ConnectNotify is Connect that calls failed (when not nil) with each
// failed attempt to reach the server at cfg.URL, before it waits to retry.
//
// While the server cannot be reached (connection refused, DNS, TLS,
// authorization) or has no JetStream yet, it logs the URL (without any
// login) and the cause at warn, and retries with growing waits until ctx
// ends; it then returns the last cause, not ctx's error. A server that
// answers but whose stream does not take our subjects, and an embedded
// server that cannot start (ErrEmbeddedStart), fail at once.
//
// The embedded server listens on nats.embedded.listen and admits only the
// NKey user whose seed is in CredentialsPath(store_dir), made on first
// start with mode 0600; with listen "none" it listens on no port and needs
// no credentials. It holds a lock on store_dir while it runs, restarts its
// own JetStream after a storage failure (a full disk) once the store has
// room again, and its log goes to log with component=nats-server.
func ConnectNotify(ctx context.Context, cfg config.NATS, log *slog.Logger, failed func(error)) (*Conn, error) {
	if log == nil {
		log = slog.Default()
	}
	if cfg.URL != "" {
		return connectRetrying(ctx, cfg, log, failed)
	}
	c := blankConn(cfg, log)
	emb, err := startEmbedded(cfg.Embedded, log)
	if err != nil {
		return nil, err
	}
	emb.restarting = c.restarting.Store
	c.emb = emb
	url := emb.srv.ClientURL()
	emb.started()
	// The embedded server is in this process: talk to it through a
	// pipe, not through the kernel's loopback.
	extra := []nats.Option{nats.InProcessServer(emb.srv)}
	if emb.key != nil {
		opt, err := nkeyOption(emb.key)
		if err != nil {
			c.Close()
			return nil, err
		}
		extra = append(extra, opt)
	}
	if err := c.connect(ctx, cfg, url, extra...); err != nil {
		c.Close()
		return nil, err
	}
	gctx, cancel := context.WithCancel(context.Background())
	c.emb.stopGuard = cancel
	c.emb.guardDone.Add(1)
	go func() {
		defer c.emb.guardDone.Done()
		c.emb.watch(gctx)
	}()
	return c, nil
}

// The waits between attempts to reach the server at nats.url. Variables
// so that tests can shorten them.
var (
	connectRetryMin = 500 * time.Millisecond
	connectRetryMax = 30 * time.Second
	ensureTimeout   = 15 * time.Second // one attempt at the JetStream resources
)

// connectRetrying is ConnectNotify for the server at cfg.URL.
func connectRetrying(ctx context.Context, cfg config.NATS, log *slog.Logger, failed func(error)) (*Conn, error) {
	url := redact.URLs(cfg.URL)
	delay := connectRetryMin
	for attempt := 1; ; attempt++ {
		c := blankConn(cfg, log)
		// Fail each attempt with its cause instead of nats.go retrying
		// in the background; once connected, it reconnects for ever.
		actx, cancel := context.WithTimeout(ctx, ensureTimeout)
		err := c.connect(actx, cfg, cfg.URL, nats.RetryOnFailedConnect(false))
		cancel()
		if err == nil {
			if attempt > 1 {
				log.Info("NATS reachable", "url", url, "attempts", attempt)
			}
			return c, nil
		}
		c.Close()
		if !retryable(err) || ctx.Err() != nil {
			return nil, err
		}
		if failed != nil {
			failed(err)
		}
		args := []any{"url", url, "err", err, "retry_in", delay}
		if fix := natsFix(err); fix != "" {
			args = append(args, "fix", fix)
		}
		log.Warn("NATS not reachable; retrying", args...)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
		delay = min(delay*2, connectRetryMax)
	}
}

// permanent marks an error that retrying does not cure (a stream that
// exists but does not take our subjects).
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// retryable reports whether a failed attempt may succeed later: the server
// is down, unknown to DNS yet, refuses the login or has no JetStream.
func retryable(err error) bool {
	var p permanent
	return !errors.As(err, &p)
}

// dialRecorder dials like nats.go does and keeps the last failure, which
// nats.go reports only as ErrNoServers when it was "connection refused".
type dialRecorder struct {
	d       net.Dialer
	mu      sync.Mutex
	lastErr error
}

// Dial implements nats.CustomDialer.
func (r *dialRecorder) Dial(network, address string) (net.Conn, error) {
	conn, err := r.d.Dial(network, address)
	if err != nil {
		r.mu.Lock()
		r.lastErr = err
		r.mu.Unlock()
	}
	return conn, err
}

func (r *dialRecorder) last() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

// natsFix says what to check for a failed connection, or "".
func natsFix(err error) string {
	msg := strings.ToLower(err.Error())
	switch {
	case strings.Contains(msg, "connection refused"):
		return "nothing listens there: start NATS, or correct host and port in nats.url"
	case strings.Contains(msg, "no such host") || strings.Contains(msg, "server misbehaving"):
		return "the host name does not resolve: correct it in nats.url, or check DNS"
	case strings.Contains(msg, "x509") || strings.Contains(msg, "certificate"):
		return "the server's certificate is not trusted: set nats.tls.ca_file to the CA that signed it"
	case strings.Contains(msg, "tls"):
		return "TLS failed: use tls:// only if the server speaks TLS, and check nats.tls"
	case strings.Contains(msg, "authorization violation") || strings.Contains(msg, "authentication"):
		return "the server refused the login: check nats.credentials_file, nats.user/password or nats.token"
	case strings.Contains(msg, "jetstream not enabled"):
		return "the server runs without JetStream: start it with -js (jetstream {} in its config)"
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "i/o timeout"):
		return "no answer in time: check that nats.url points at a NATS server and nothing drops the traffic"
	}
	return ""
}

// ConnectEmbedded connects over TCP to the embedded server that a running
// `mailpoller run` with this nats block started (nats.url empty), logging
// in with the credentials file in its store directory, and ensures the
// stream and buckets like Connect. It starts no server and does not wait
// for one: with none listening it fails at once. It wraps
// ErrNoCredentials when the store has no credentials file yet.
func ConnectEmbedded(ctx context.Context, cfg config.NATS, log *slog.Logger) (*Conn, error) {
	if log == nil {
		log = slog.Default()
	}
	url, opt, err := EmbeddedClient(cfg.Embedded)
	if err != nil {
		return nil, err
	}
	c := blankConn(cfg, log)
	if err := c.connect(ctx, cfg, url, opt, nats.RetryOnFailedConnect(false)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// EmbeddedClient returns the URL of the embedded server that e describes
// and the option that logs in to it, for a process other than the one
// running it (tail, check). It fails when e.Listen is ListenNone or picks
// a free port (nothing else can know it), and wraps ErrNoCredentials when
// no server has made the credentials file yet.
func EmbeddedClient(e config.Embedded) (string, nats.Option, error) {
	listen := e.Listen
	if listen == "" {
		listen = defaultListen
	}
	if strings.EqualFold(listen, ListenNone) {
		return "", nil, errors.New("the embedded NATS server listens on no port (nats.embedded.listen: none): only the mailpoller process that runs it can reach it")
	}
	if _, port, err := listenAddr(listen); err != nil {
		return "", nil, err
	} else if port == server.RANDOM_PORT {
		return "", nil, fmt.Errorf("the embedded NATS server listens on a free port picked at start (nats.embedded.listen: %s): give it a fixed port", listen)
	}
	opt, err := EmbeddedCredentials(e.StoreDir)
	if err != nil {
		return "", nil, err
	}
	return "nats://" + listen, opt, nil
}

// blankConn is a Conn with the config's names, not connected yet.
func blankConn(cfg config.NATS, log *slog.Logger) *Conn {
	c := &Conn{log: log, stream: cfg.Stream, prefix: cfg.SubjectPrefix, keep: cfg.Retention}
	if c.stream == "" {
		c.stream = "MAIL"
	}
	if c.prefix == "" {
		c.prefix = "mail.inbound"
	}
	return c
}

// connect dials url with the config's client options and extra ones, and
// ensures the JetStream resources.
func (c *Conn) connect(ctx context.Context, cfg config.NATS, url string, extra ...nats.Option) error {
	opts, err := ClientOptions(cfg, c.log)
	if err != nil {
		return err
	}
	dialer := &dialRecorder{d: net.Dialer{Timeout: nats.GetDefaultOptions().Timeout}}
	opts = append(opts, nats.SetCustomDialer(dialer))
	nc, err := nats.Connect(url, append(opts, extra...)...)
	if err != nil {
		if dialErr := dialer.last(); errors.Is(err, nats.ErrNoServers) && dialErr != nil {
			err = fmt.Errorf("%w: %w", err, dialErr)
		}
		return fmt.Errorf("connect to NATS at %s: %w", redact.URLs(url), err)
	}
	c.nc = nc
	return c.ensure(ctx)
}

// ClientOptions are the nats.go options for the config's nats block:
// credentials, TLS, endless reconnects, and disconnects logged to log. The
// login and TLS settings are for the server at nats.url: with an empty URL
// (the embedded server) they are left out. Turning TLS certificate checks
// off is logged as a warning.
func ClientOptions(cfg config.NATS, log *slog.Logger) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name("mailpoller"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("NATS reconnected", "url", nc.ConnectedUrlRedacted()) }),
	}
	if cfg.URL == "" {
		return opts, nil
	}
	if cfg.CredentialsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredentialsFile))
	}
	if cfg.User != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.TLS.CAFile != "" || cfg.TLS.InsecureSkipVerify {
		tc, err := cfg.TLS.ClientConfig("")
		if err != nil {
			return nil, fmt.Errorf("nats tls: %w", err)
		}
		opts = append(opts, nats.Secure(tc))
		if cfg.TLS.InsecureSkipVerify {
			log.Warn("TLS certificate checks are off for NATS (nats.tls.insecure_skip_verify)")
		}
	}
	return opts, nil
}

func (c *Conn) ensure(ctx context.Context) error {
	js, err := jetstream.New(c.nc, jetstream.WithPublishAsyncMaxPending(1024), jetstream.WithPublishAsyncTimeout(30*time.Second))
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	c.js = js
	c.replicas = 1
	if c.nc.ConnectedClusterName() != "" {
		// In a cluster, keep three copies so events, checkpoints and leases
		// survive a node (fewer only if the cluster is smaller: see
		// withReplicas). The client's list of known servers is no measure
		// of the cluster's size: it may not have heard of them all yet.
		c.replicas = 3
	}
	if err := c.ensureStream(ctx); err != nil {
		return err
	}
	err = c.withReplicas(func(r int) (err error) {
		c.state, err = js.CreateOrUpdateKeyValue(ctx, stateConfig(r))
		return err
	})
	if err != nil {
		return fmt.Errorf("create KV bucket %s: %w", StateBucket, err)
	}
	err = c.withReplicas(func(r int) (err error) {
		c.blobs, err = js.CreateOrUpdateObjectStore(ctx, blobConfig(r, c.keep))
		return err
	})
	if err != nil {
		return fmt.Errorf("create object store %s: %w", BlobBucket, err)
	}
	return nil
}

func stateConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      StateBucket,
		Description: "mailpoller checkpoints",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	}
}

// blobConfig is the object store's config, with keep's blob limits (0:
// none), so that creating or updating it applies them.
func blobConfig(replicas int, keep config.Retention) jetstream.ObjectStoreConfig {
	return jetstream.ObjectStoreConfig{
		Bucket:      BlobBucket,
		Description: "raw mail and large attachments, keyed by sha256",
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		TTL:         keep.BlobsMaxAge.D(),
		MaxBytes:    int64(keep.BlobsMaxBytes),
	}
}

// eventLimits are the events stream's MaxAge, MaxBytes and Duplicates for
// keep: 0 bytes is no limit (-1 to JetStream), and the dedup window is an
// hour, or the whole age when that is shorter (JetStream wants it within).
func eventLimits(keep config.Retention) (maxAge time.Duration, maxBytes int64, dups time.Duration) {
	maxAge, maxBytes, dups = keep.EventsMaxAge.D(), int64(keep.EventsMaxBytes), time.Hour
	if maxBytes == 0 {
		maxBytes = -1
	}
	if maxAge > 0 && maxAge < dups {
		dups = maxAge
	}
	return maxAge, maxBytes, dups
}

// withReplicas runs create with c.replicas copies, and with fewer while
// the cluster answers that it has not enough servers for them (a cluster
// of two); it keeps the count that worked for the next stream or bucket.
func (c *Conn) withReplicas(create func(replicas int) error) error {
	for {
		err := create(c.replicas)
		var apiErr *jetstream.APIError
		if err == nil || c.replicas == 1 || !errors.As(err, &apiErr) {
			return err
		}
		switch apiErr.ErrorCode {
		case 10005, 10023, 10074: // no suitable peers, insufficient resources, not clustered
			c.replicas--
			c.log.Warn("the NATS cluster cannot keep three copies; using fewer", "replicas", c.replicas, "err", err)
		default:
			return err
		}
	}
}

// ensureStream creates the events stream if it is missing and checks that
// an existing one takes our subjects.
func (c *Conn) ensureStream(ctx context.Context) error {
	subjects := c.prefix + ".>"
	st, err := c.js.Stream(ctx, c.stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		maxAge, maxBytes, dups := eventLimits(c.keep)
		err = c.withReplicas(func(r int) error {
			_, err := c.js.CreateStream(ctx, jetstream.StreamConfig{
				Name:        c.stream,
				Description: "mail events from mailpoller",
				Subjects:    []string{subjects},
				Storage:     jetstream.FileStorage,
				Duplicates:  dups,
				MaxAge:      maxAge,
				MaxBytes:    maxBytes,
				Replicas:    r,
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("create stream %s: %w", c.stream, err)
		}
		c.log.Info("stream created", "stream", c.stream, "subjects", subjects, "replicas", c.replicas, "max_age", maxAge, "max_bytes", maxBytes)
	case err != nil:
		return fmt.Errorf("look up stream %s: %w", c.stream, err)
	default:
		if !covers(st.CachedInfo().Config.Subjects, subjects) {
			return permanent{fmt.Errorf("stream %s exists but does not take %q (its subjects: %v): add the subject or change nats.subject_prefix",
				c.stream, subjects, st.CachedInfo().Config.Subjects)}
		}
		return c.updateLimits(ctx, st.CachedInfo().Config)
	}
	return nil
}

// updateLimits sets nats.retention's limits on an existing events stream
// whose limits differ.
func (c *Conn) updateLimits(ctx context.Context, have jetstream.StreamConfig) error {
	maxAge, maxBytes, dups := eventLimits(c.keep)
	if have.MaxAge == maxAge && have.MaxBytes == maxBytes {
		return nil
	}
	want := have
	want.MaxAge, want.MaxBytes = maxAge, maxBytes
	if maxAge > 0 && want.Duplicates > maxAge {
		want.Duplicates = dups
	}
	if _, err := c.js.UpdateStream(ctx, want); err != nil {
		return fmt.Errorf("set retention (nats.retention) on stream %s: %w", c.stream, err)
	}
	c.log.Info("stream retention updated", "stream", c.stream, "max_age", maxAge, "max_bytes", maxBytes,
		"was_max_age", have.MaxAge, "was_max_bytes", have.MaxBytes)
	return nil
}

func covers(have []string, want string) bool {
	for _, s := range have {
		if s == want || s == ">" {
			return true
		}
	}
	return false
}

// NATS returns the underlying connection (for subscribers such as tail).
func (c *Conn) NATS() *nats.Conn { return c.nc }

// JetStream returns the JetStream context.
func (c *Conn) JetStream() jetstream.JetStream { return c.js }

// Stream is the name of the events stream.
func (c *Conn) Stream() string { return c.stream }

// Prefix is the subject prefix of events.
func (c *Conn) Prefix() string { return c.prefix }

// MaxPayload is the largest message the server accepts.
func (c *Conn) MaxPayload() int64 { return c.nc.MaxPayload() }

// Close drains nothing: it closes the client and stops the embedded server
// and its storage guard.
func (c *Conn) Close() {
	if c.nc != nil {
		c.nc.Close()
	}
	if c.emb != nil {
		c.emb.shutdown()
	}
}
