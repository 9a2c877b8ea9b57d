package main

import (
	"context"
	"encoding/json"
	"errors"
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
	"github.com/mailpoller/mailpoller/publish"
)

func cmdTail(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runTail(ctx, args, stdout, stderr)
}

// runTail is `mailpoller tail` until ctx ends.
func runTail(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, path := flags("tail", stderr, "config file (for the NATS settings)")
	url := fs.String("url", "", "NATS URL (default: from the config; the embedded server's listen address when nats.url is empty)")
	asJSON := fs.Bool("json", false, "print whole events as JSON, one per line")
	all := fs.Bool("all", false, "print the stream's stored events first, then new ones")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	subject := cfg.NATS.SubjectPrefix + ".>"
	if fs.NArg() > 0 {
		subject = fs.Arg(0)
	}
	opts, err := publish.ClientOptions(cfg.NATS, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		fmt.Fprintln(stderr, "mailpoller tail:", err)
		return 1
	}
	u := *url
	if u == "" {
		u = cfg.NATS.URL
	}
	if cfg.NATS.URL == "" {
		// The embedded server of a running `mailpoller run`: log in with
		// the credentials in its store directory.
		var login nats.Option
		if u == "" {
			u, login, err = publish.EmbeddedClient(cfg.NATS.Embedded)
		} else if login, err = publish.EmbeddedCredentials(cfg.NATS.Embedded.StoreDir); errors.Is(err, publish.ErrNoCredentials) {
			err = nil // -url names some other server
		}
		if err != nil {
			fmt.Fprintf(stderr, "mailpoller tail: %v (is `mailpoller run` with the embedded server running on this store?)\n", err)
			return 1
		}
		if login != nil {
			opts = append(opts, login)
		}
	}
	nc, err := nats.Connect(u, append(opts, nats.RetryOnFailedConnect(false))...)
	if err != nil {
		fmt.Fprintf(stderr, "mailpoller tail: connect to %s: %v (is `mailpoller run` with the embedded server, or your NATS, running?)\n", u, err)
		return 1
	}
	defer nc.Close()
	return tail(ctx, nc, cfg.NATS.Stream, subject, *all, *asJSON, stdout, stderr)
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
