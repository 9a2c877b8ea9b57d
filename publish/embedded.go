package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/mailpoller/mailpoller/config"
)

const (
	defaultListen   = "127.0.0.1:4222"
	defaultStoreDir = "./data/nats"
)

// embedded is a NATS server with JetStream running inside mailpoller, with
// its storage guard.
type embedded struct {
	srv      *server.Server
	storeDir string
	js       server.JetStreamConfig // as started; StoreDir is storeDir, without nats-server's "jetstream" suffix
	key      nkeys.KeyPair          // the one user's key; nil when the server has no TCP listener
	log      *slog.Logger
	slog     *serverLog

	lock       *storeLock // on storeDir, held while the server runs
	guard      storageGuard
	stopGuard  context.CancelFunc
	guardDone  sync.WaitGroup
	restarting func(bool) // tells the Conn a JetStream restart is under way
}

// startEmbedded starts the embedded server for e. Unless e.Listen is
// ListenNone, the server listens on TCP and admits only the user whose key
// is in the store directory's credentials file (made on first start).
func startEmbedded(e config.Embedded, log *slog.Logger) (*embedded, error) {
	dir := e.StoreDir
	if dir == "" {
		dir = defaultStoreDir
	}
	opts := &server.Options{
		ServerName:             "mailpoller-embedded",
		JetStream:              true,
		StoreDir:               dir,
		NoSigs:                 true,
		NoLog:                  true, // its lines go through SetLoggerV2 below
		DisableJetStreamBanner: true,
	}
	lock, err := lockStore(dir)
	if err != nil {
		return nil, err
	}
	emb := &embedded{storeDir: dir, log: log, lock: lock, guard: storageGuard{kicks: make(chan string, 1)}}
	ok := false
	defer func() {
		if !ok {
			lock.release()
		}
	}()
	if strings.EqualFold(e.Listen, ListenNone) {
		opts.DontListen = true
	} else {
		host, port, err := listenAddr(e.Listen)
		if err != nil {
			return nil, err
		}
		if err := canListen(host, port); err != nil {
			return nil, err
		}
		opts.Host, opts.Port = host, port
		kp, err := loadOrCreateKey(dir)
		if err != nil {
			return nil, err
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("embedded NATS server credentials: %w", err)
		}
		emb.key = kp
		opts.Nkeys = []*server.NkeyUser{{Nkey: pub}}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	emb.srv = srv
	sl := &serverLog{log: log, onStorageError: emb.guard.kick}
	emb.slog = sl
	srv.SetLoggerV2(sl, log.Enabled(context.Background(), slog.LevelDebug), false, false)
	// Start returns once the listeners are up, so the check below passes
	// at once; with Start in a goroutine it would poll every 25 ms.
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("%w: embedded NATS server on %s did not start within 10s (see its log lines above; change nats.embedded.listen if the port is taken)", ErrEmbeddedStart, e.Listen)
	}
	sl.running.Store(true)
	jsc := srv.JetStreamConfig()
	if jsc == nil {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded NATS server: JetStream did not start (store %s)", dir)
	}
	emb.js = *jsc
	emb.js.StoreDir = dir
	ok = true
	return emb, nil
}

// ErrEmbeddedStart means the embedded server could not start for a reason
// in the config or on this machine (a busy port, a locked store): fix that,
// retrying does not help.
var ErrEmbeddedStart = errors.New("embedded NATS server cannot start")

// canListen checks at once that host:port can be bound, so that a busy
// port is reported with the key to change instead of nats-server's start
// timing out. Port RANDOM_PORT always can.
func canListen(host string, port int) error {
	if port == server.RANDOM_PORT {
		return nil
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%w: listen on %s: %v: another program (or another mailpoller) uses the port; change nats.embedded.listen, or stop it",
			ErrEmbeddedStart, addr, unwrapOp(err))
	}
	return ln.Close()
}

// unwrapOp is the system error inside a net.OpError ("address already in
// use"), without the repeated address.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// listenAddr splits a nats.embedded.listen value; port 0 (or -1) picks a
// free port.
func listenAddr(listen string) (string, int, error) {
	if listen == "" {
		listen = defaultListen
	}
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("nats.embedded.listen %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return "", 0, fmt.Errorf("nats.embedded.listen %q: bad port", listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// started logs where the server is and how other clients log in to it.
func (e *embedded) started() {
	if e.key == nil {
		e.log.Info("embedded NATS server started, in-process only (nats.embedded.listen: none)", "store_dir", e.storeDir)
		return
	}
	url := e.srv.ClientURL()
	e.log.Info("embedded NATS server started; other clients log in with the NKey in credentials_file (nats --server URL --nkey FILE)",
		"url", url, "store_dir", e.storeDir, "credentials_file", CredentialsPath(e.storeDir))
}

// shutdown stops the guard, then the server, and waits for both.
func (e *embedded) shutdown() {
	if e.stopGuard != nil {
		e.stopGuard()
		e.guardDone.Wait()
	}
	e.slog.running.Store(false) // its shutdown chatter goes to debug
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	e.lock.release()
}
