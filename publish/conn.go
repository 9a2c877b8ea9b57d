// Package publish owns mailpoller's side of NATS: it connects to the user's
// cluster or starts an embedded server, makes sure the stream, the checkpoint
// KV bucket and the blob object store exist, and publishes events with
// their id as Nats-Msg-Id so JetStream drops repeats.
package publish

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
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
	srv      *server.Server // embedded server, nil when using a cluster
	log      *slog.Logger
	stream   string
	prefix   string
	replicas int // of the stream and buckets mailpoller creates

	writingMu sync.Mutex
	writing   map[string]chan struct{} // blob keys being written, closed when done
}

// Connect connects to cfg.URL, or starts an embedded JetStream server when
// the URL is empty, and ensures the stream, KV bucket and object store exist.
// It waits up to ctx's deadline for the server.
func Connect(ctx context.Context, cfg config.NATS, log *slog.Logger) (*Conn, error) {
	if log == nil {
		log = slog.Default()
	}
	c := &Conn{log: log, stream: cfg.Stream, prefix: cfg.SubjectPrefix}
	if c.stream == "" {
		c.stream = "MAIL"
	}
	if c.prefix == "" {
		c.prefix = "mail.inbound"
	}
	url := cfg.URL
	if url == "" {
		srv, err := startEmbedded(cfg.Embedded)
		if err != nil {
			return nil, err
		}
		c.srv = srv
		url = srv.ClientURL()
		log.Info("embedded NATS server started", "url", url, "store_dir", cfg.Embedded.StoreDir)
	}
	opts, err := ClientOptions(cfg, log)
	if err != nil {
		c.Close()
		return nil, err
	}
	if c.srv != nil {
		// The embedded server is in this process: talk to it through a
		// pipe, not through the kernel's loopback.
		opts = append(opts, nats.InProcessServer(c.srv))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	c.nc = nc
	if err := c.ensure(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// ClientOptions are the nats.go options for the config's nats block:
// credentials, TLS, endless reconnects, and disconnects logged to log.
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
		tc, err := TLSConfig(cfg.TLS, "")
		if err != nil {
			return nil, fmt.Errorf("nats tls: %w", err)
		}
		opts = append(opts, nats.Secure(tc))
	}
	return opts, nil
}

// TLSConfig builds a client TLS config from the config's tls block.
// serverName may be empty to take it from the dialled address.
func TLSConfig(t config.TLS, serverName string) (*tls.Config, error) {
	tc := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

func startEmbedded(e config.Embedded) (*server.Server, error) {
	listen := e.Listen
	if listen == "" {
		listen = "127.0.0.1:4222"
	}
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("nats.embedded.listen %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("nats.embedded.listen %q: bad port", listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	dir := e.StoreDir
	if dir == "" {
		dir = "./data/nats"
	}
	opts := &server.Options{
		ServerName: "mailpoller-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		NoLog:      true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	// Start returns once the listeners are up, so the check below passes
	// at once; with Start in a goroutine it would poll every 25 ms.
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded NATS server on %s did not start within 10s", listen)
	}
	return srv, nil
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
		c.state, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      StateBucket,
			Description: "mailpoller checkpoints",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    r,
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("create KV bucket %s: %w", StateBucket, err)
	}
	err = c.withReplicas(func(r int) (err error) {
		c.blobs, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      BlobBucket,
			Description: "raw mail and large attachments, keyed by sha256",
			Storage:     jetstream.FileStorage,
			Replicas:    r,
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("create object store %s: %w", BlobBucket, err)
	}
	return nil
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

// Close drains nothing: it closes the client and stops the embedded server.
func (c *Conn) Close() {
	if c.nc != nil {
		c.nc.Close()
	}
	if c.srv != nil {
		c.srv.Shutdown()
		c.srv.WaitForShutdown()
	}
}
