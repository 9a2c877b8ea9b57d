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
	neturl "net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailpoller/mailpoller/config"
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
// It waits up to ctx's deadline for the server.
//
// The embedded server listens on nats.embedded.listen and admits only the
// NKey user whose seed is in CredentialsPath(store_dir), made on first
// start with mode 0600; with listen "none" it listens on no port and needs
// no credentials. It restarts its own JetStream after a storage failure
// (a full disk) once the store has room again, and its log goes to log
// with component=nats-server.
func Connect(ctx context.Context, cfg config.NATS, log *slog.Logger) (*Conn, error) {
	if log == nil {
		log = slog.Default()
	}
	c := blankConn(cfg, log)
	url := cfg.URL
	var extra []nats.Option
	if url == "" {
		emb, err := startEmbedded(cfg.Embedded, log)
		if err != nil {
			return nil, err
		}
		emb.restarting = c.restarting.Store
		c.emb = emb
		url = emb.srv.ClientURL()
		emb.started()
		// The embedded server is in this process: talk to it through a
		// pipe, not through the kernel's loopback.
		extra = append(extra, nats.InProcessServer(emb.srv))
		if emb.key != nil {
			opt, err := nkeyOption(emb.key)
			if err != nil {
				c.Close()
				return nil, err
			}
			extra = append(extra, opt)
		}
	}
	if err := c.connect(ctx, cfg, url, extra...); err != nil {
		c.Close()
		return nil, err
	}
	if c.emb != nil {
		gctx, cancel := context.WithCancel(context.Background())
		c.emb.stopGuard = cancel
		c.emb.guardDone.Add(1)
		go func() {
			defer c.emb.guardDone.Done()
			c.emb.watch(gctx)
		}()
	}
	return c, nil
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
	c := &Conn{log: log, stream: cfg.Stream, prefix: cfg.SubjectPrefix}
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
	nc, err := nats.Connect(url, append(opts, extra...)...)
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", url, err)
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
		c.blobs, err = js.CreateOrUpdateObjectStore(ctx, blobConfig(r))
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

func blobConfig(replicas int) jetstream.ObjectStoreConfig {
	return jetstream.ObjectStoreConfig{
		Bucket:      BlobBucket,
		Description: "raw mail and large attachments, keyed by sha256",
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	}
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
		err = c.withReplicas(func(r int) error {
			_, err := c.js.CreateStream(ctx, jetstream.StreamConfig{
				Name:        c.stream,
				Description: "mail events from mailpoller",
				Subjects:    []string{subjects},
				Storage:     jetstream.FileStorage,
				Duplicates:  time.Hour,
				Replicas:    r,
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("create stream %s: %w", c.stream, err)
		}
		c.log.Info("stream created", "stream", c.stream, "subjects", subjects, "replicas", c.replicas)
	case err != nil:
		return fmt.Errorf("look up stream %s: %w", c.stream, err)
	default:
		if !covers(st.CachedInfo().Config.Subjects, subjects) {
			return fmt.Errorf("stream %s exists but does not take %q (its subjects: %v): add the subject or change nats.subject_prefix",
				c.stream, subjects, st.CachedInfo().Config.Subjects)
		}
	}
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

// RedactURL is a NATS URL list with any user, password or token left out,
// for logs and errors.
func RedactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		u, err := neturl.Parse(p)
		if err != nil || u.Host == "" {
			if at := strings.LastIndex(p, "@"); at >= 0 {
				p = "[redacted]@" + p[at+1:]
			}
			parts[i] = p
			continue
		}
		if u.User != nil {
			u.User = nil
			parts[i] = "[redacted]@" + u.Host
			if u.Scheme != "" {
				parts[i] = u.Scheme + "://" + parts[i]
			}
			continue
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}
