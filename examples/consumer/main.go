// Command consumer is an example consumer of mailpoller's events: a
// durable JetStream consumer on the MAIL stream that prints each event,
// fetches its attachments and raw message from the object store, checks
// their sha256, skips events it has seen before (by the CloudEvents id),
// and acks.
//
// It reads only the event contract (configs/event.schema.json) and the
// object store, so a consumer in another repository can start from a copy
// of this directory. Usage:
//
//	consumer --url nats://nats.example.com:4222 --creds app.creds --durable case-mgmt
//	consumer --url nats://127.0.0.1:4222 --nkey ./data/nats/client.nk   # the embedded server
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	var (
		url     = flag.String("url", nats.DefaultURL, "NATS server URL(s), comma-separated")
		creds   = flag.String("creds", "", "NATS .creds file (empty: none)")
		nkey    = flag.String("nkey", "", "NKey seed file, e.g. the embedded server's client.nk (empty: none)")
		opts    Options
		subject string
	)
	flag.StringVar(&opts.Stream, "stream", "MAIL", "JetStream stream holding the events")
	flag.StringVar(&opts.Durable, "durable", "example-consumer", "durable consumer name (kept by the server across restarts)")
	flag.StringVar(&subject, "subject", "", "only events on this subject filter, e.g. mail.inbound.support.> (empty: all)")
	flag.StringVar(&opts.Bucket, "bucket", "mailpoller-blobs", "object store bucket of attachments and raw messages")
	flag.Parse()
	if subject != "" {
		opts.FilterSubjects = []string{subject}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var nopts []nats.Option
	if *creds != "" {
		nopts = append(nopts, nats.UserCredentials(*creds))
	}
	if *nkey != "" {
		o, err := nats.NkeyOptionFromSeed(*nkey)
		if err != nil {
			slog.Error("read NKey seed", "file", *nkey, "err", err)
			os.Exit(1)
		}
		nopts = append(nopts, o)
	}
	nc, err := nats.Connect(*url, nopts...)
	if err != nil {
		slog.Error("connect to NATS", "err", err)
		os.Exit(1)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		slog.Error("open JetStream", "err", err)
		os.Exit(1)
	}
	opts.Seen = NewSeen(100_000)
	if err := Run(ctx, js, opts, os.Stdout); err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
}
