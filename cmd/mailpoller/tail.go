package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/internal/redact"
	"github.com/mailpoller/mailpoller/publish"
)

func cmdTail(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runTail(ctx, args, stdout, stderr)
}

// runTail is `mailpoller tail` until ctx ends. With --url and no -c it
// needs no config file: the login comes from --creds, --user/--password
// or --nkey, and no account's secret is read.
func runTail(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, path := flags("tail", stderr, "config file (for the NATS settings); not read when --url is given without -c")
	url := fs.String("url", "", "NATS URL (default: from the config; the embedded server's listen address when nats.url is empty)")
	creds := fs.String("creds", "", "with --url: NATS .creds file (JWT and NKey seed)")
	user := fs.String("user", "", "with --url: NATS user")
	password := fs.String("password", "", "with --url: NATS password (default: $MAILPOLLER_NATS_PASSWORD)")
	nkey := fs.String("nkey", "", "with --url: file holding an NKey seed (the embedded server's credentials_file)")
	stream := fs.String("stream", "", "with --url: events stream (default MAIL, or the config's)")
	prefix := fs.String("prefix", "", "with --url: subject prefix (default mail.inbound, or the config's)")
	asJSON := fs.Bool("json", false, "print whole events as JSON, one per line")
	all := fs.Bool("all", false, "print the stream's stored events first, then new ones")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	explicitConfig := false
	fs.Visit(func(f *flag.Flag) { explicitConfig = explicitConfig || f.Name == "c" })
	var nc *nats.Conn
	var n config.NATS
	if *url != "" && !explicitConfig {
		n = config.NATS{URL: *url, CredentialsFile: *creds, User: *user, Password: *password,
			Stream: config.DefaultStream, SubjectPrefix: config.DefaultSubjectPrefix}
		if n.Password == "" && n.User != "" {
			n.Password = os.Getenv("MAILPOLLER_NATS_PASSWORD")
		}
		var err error
		if nc, err = tailConnect(n, *nkey, stderr); err != nil {
			fmt.Fprintf(stderr, "mailpoller tail: %v\n", err)
			return 1
		}
	} else {
		cfg, err := config.Load(*path)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		n = cfg.NATS
		if nc, err = tailConnectConfig(n, *url, stderr); err != nil {
			fmt.Fprintf(stderr, "mailpoller tail: %v\n", err)
			return 1
		}
	}
	defer nc.Close()
	if *stream != "" {
		n.Stream = *stream
	}
	if *prefix != "" {
		n.SubjectPrefix = *prefix
	}
	subject := n.SubjectPrefix + ".>"
	if fs.NArg() > 0 {
		subject = fs.Arg(0)
	}
	return tail(ctx, nc, n.Stream, subject, *all, *asJSON, stdout, stderr)
}

// tailConnect connects to n.URL with n's login, or with the NKey seed in
// nkeyFile when that is set.
func tailConnect(n config.NATS, nkeyFile string, stderr io.Writer) (*nats.Conn, error) {
	if nkeyFile != "" && (n.CredentialsFile != "" || n.User != "") {
		return nil, errors.New("give one of --creds, --user/--password and --nkey")
	}
	if n.CredentialsFile != "" && n.User != "" {
		return nil, errors.New("give one of --creds, --user/--password and --nkey")
	}
	opts, err := publish.ClientOptions(n, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return nil, err
	}
	if nkeyFile != "" {
		opt, err := nats.NkeyOptionFromSeed(nkeyFile)
		if err != nil {
			return nil, fmt.Errorf("read NKey seed from --nkey %s: %w", nkeyFile, err)
		}
		opts = append(opts, opt)
	}
	nc, err := nats.Connect(n.URL, append(opts, nats.RetryOnFailedConnect(false))...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", redact.URLs(n.URL), err)
	}
	return nc, nil
}

// tailConnectConfig connects with the config's nats block; url, when set,
// overrides its server.
func tailConnectConfig(n config.NATS, url string, stderr io.Writer) (*nats.Conn, error) {
	opts, err := publish.ClientOptions(n, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return nil, err
	}
	u := url
	if u == "" {
		u = n.URL
	}
	if n.URL == "" {
		// The embedded server of a running `mailpoller run`: log in with
		// the credentials in its store directory.
		var login nats.Option
		if u == "" {
			u, login, err = publish.EmbeddedClient(n.Embedded)
		} else if login, err = publish.EmbeddedCredentials(n.Embedded.StoreDir); errors.Is(err, publish.ErrNoCredentials) {
			err = nil // --url names some other server
		}
		if err != nil {
			return nil, fmt.Errorf("%w (is `mailpoller run` with the embedded server running on this store?)", err)
		}
		if login != nil {
			opts = append(opts, login)
		}
	}
	nc, err := nats.Connect(u, append(opts, nats.RetryOnFailedConnect(false))...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w (is `mailpoller run` with the embedded server, or your NATS, running?)", redact.URLs(u), err)
	}
	return nc, nil
}

// tail prints events from stream on subject until ctx ends.
func tail(ctx context.Context, nc *nats.Conn, stream, subject string, all, asJSON bool, stdout, stderr io.Writer) int {
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Fprintln(stderr, "mailpoller tail:", err)
		return 1
	}
	policy := jetstream.DeliverNewPolicy
	if all {
		policy = jetstream.DeliverAllPolicy
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}, DeliverPolicy: policy})
	if err != nil {
		fmt.Fprintf(stderr, "mailpoller tail: consume %s from stream %s: %v\n", subject, stream, err)
		return 1
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		printEvent(stdout, m.Subject(), m.Data(), asJSON)
	})
	if err != nil {
		fmt.Fprintln(stderr, "mailpoller tail:", err)
		return 1
	}
	defer cc.Stop()
	<-ctx.Done()
	return 0
}

// printEvent writes one event as a readable line, or as raw JSON.
func printEvent(w io.Writer, subject string, data []byte, asJSON bool) {
	if asJSON {
		fmt.Fprintf(w, "%s\n", data)
		return
	}
	fmt.Fprintln(w, summary(subject, data))
}

// summary is the one-line form of an event:
// time  account/mailbox  from  "subject"  [2 attachments] [auto_reply] id
func summary(subject string, data []byte) string {
	var ev publish.Event
	if err := json.Unmarshal(data, &ev); err != nil || ev.Type != publish.EventType {
		var dl publish.DeadLetter
		if json.Unmarshal(data, &dl) == nil && dl.Reason != "" {
			return fmt.Sprintf("DEAD LETTER %s/%s %s: %s", dl.Account, dl.Mailbox, dl.ServerID, dl.Reason)
		}
		return fmt.Sprintf("%s: %d bytes (not a mailpoller event)", subject, len(data))
	}
	d := ev.Data
	return fmt.Sprintf("%s  %s/%s  %s  id=%s", ev.Time.Local().Format(time.TimeOnly), d.Account, d.Mailbox, d.Message.Summary(), ev.ID)
}
