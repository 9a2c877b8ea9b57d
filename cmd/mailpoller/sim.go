package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/mailpoller/mailpoller/sim"
)

func cmdSim(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seedPath := fs.String("seed", "", "seed file (YAML): tenants, apps, mailboxes, mail; empty: the demo seed")
	caDir := fs.String("ca-dir", "", "directory to write the simulator's CA certificate to (default: a temporary one)")
	imapListen := fs.String("imap-listen", "127.0.0.1:0", "host:port of the IMAP server (port 0: a free one)")
	httpListen := fs.String("http-listen", "127.0.0.1:0", "host:port of the HTTPS server: token endpoint, EWS and control API (port 0: a free one)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	seed := demoSeed()
	if *seedPath != "" {
		var err error
		if seed, err = sim.LoadSeed(*seedPath); err != nil {
			fmt.Fprintln(stderr, "mailpoller sim:", err)
			return 2
		}
	}
	dir := *caDir
	if dir == "" {
		d, err := os.MkdirTemp("", "mailpoller-sim-")
		if err != nil {
			fmt.Fprintln(stderr, "mailpoller sim:", err)
			return 1
		}
		defer os.RemoveAll(d)
		dir = d
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := sim.Start(ctx, seed, &sim.Options{CADir: dir, IMAPListen: *imapListen, HTTPListen: *httpListen})
	if err != nil {
		fmt.Fprintln(stderr, "mailpoller sim:", err)
		return 1
	}
	defer s.Close()
	line, _ := json.Marshal(s.Endpoints())
	fmt.Fprintf(stdout, "%s\n", line)
	<-ctx.Done()
	return 0
}
