package main

import (
	"context"
	"embed"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path"
	"slices"
	"syscall"
	"time"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/configs"
	"github.com/mailpoller/mailpoller/publish"
	"github.com/mailpoller/mailpoller/sim"
)

//go:embed demomail/*.eml
var demoMail embed.FS

// Demo identities: they match configs/demo.yaml.
const (
	demoTenant = "11111111-1111-1111-1111-111111111111"
	demoClient = "22222222-2222-2222-2222-222222222222"
	demoSecret = "demo-secret"
)

var demoMailboxes = []string{"support@contoso.test", "billing@contoso.test", "hr@contoso.test", "sales@contoso.test"}

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "", "demo config (default: configs/demo.yaml, built into the binary)")
	dur := fs.Duration("for", 0, "stop after this long (default: until Ctrl-C)")
	asJSON := fs.Bool("json", false, "print whole events as JSON, one per line; stdout carries nothing else")
	verbose := fs.Bool("v", false, "show the poller's whole log (without it: errors only)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	dir, err := os.MkdirTemp("", "mailpoller-demo-")
	if err != nil {
		fmt.Fprintln(stderr, "mailpoller demo:", err)
		return 1
	}
	defer os.RemoveAll(dir)

	s, err := sim.Start(ctx, demoSeed(), &sim.Options{CADir: dir})
	if err != nil {
		fmt.Fprintln(stderr, "mailpoller demo: start simulator:", err)
		return 1
	}
	defer s.Close()
	ep := s.Endpoints()
	os.Setenv("MAILPOLLER_DEMO_AUTHORITY", ep.Authority)
	os.Setenv("MAILPOLLER_DEMO_IMAP", ep.IMAP)
	os.Setenv("MAILPOLLER_DEMO_CA", ep.CAFile)
	os.Setenv("MAILPOLLER_DEMO_EWS", ep.EWS)
	var cfg *config.Config
	if *cfgPath == "" {
		cfg, err = config.Parse(configs.Demo, "configs/demo.yaml (built in)")
	} else {
		cfg, err = config.Load(*cfgPath)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	cfg.NATS.Embedded.StoreDir = path.Join(dir, "nats") // a fresh stream every run
	logCfg := cfg.Log
	if !*verbose {
		logCfg.Level = "error" // quiet, but what stops the demo still shows
	}
	log := newLogger(logCfg, stderr)
	// The banner goes to stderr, so stdout carries only events.
	say := newLogger(cfg.Log, stderr)
	if cfg.Log.Format == "json" {
		say.Info("simulator started", "token_endpoint", ep.Authority, "imap", ep.IMAP, "ews", ep.EWS)
		say.Info("demo polling", "mailboxes", len(cfg.Mailboxes()), "poll_interval", cfg.Mailboxes()[0].PollInterval.String())
	} else {
		fmt.Fprintf(stderr, "simulator: token endpoint %s, IMAP %s, EWS %s\n", ep.Authority, ep.IMAP, ep.EWS)
		fmt.Fprintf(stderr, "polling %d mailboxes every %s; new mail arrives every few seconds. Ctrl-C to stop.\n\n",
			len(cfg.Mailboxes()), cfg.Mailboxes()[0].PollInterval)
	}

	go deliverDemoMail(ctx, s)
	onEvent := func(ev *publish.Event) {
		b, _ := json.Marshal(ev)
		printEvent(stdout, "", b, *asJSON)
	}
	code := runPoller(ctx, cfg, log, pollOptions{onEvent: onEvent}, stderr)
	if cfg.Log.Format == "json" {
		say.Info("demo stopped")
	} else {
		fmt.Fprintln(stderr, "\ndemo stopped")
	}
	return code
}

func demoSeed() *sim.Seed {
	return &sim.Seed{
		Tenants: []sim.Tenant{{ID: demoTenant, Domain: "contoso.test"}},
		Apps: []sim.App{{
			Tenant: demoTenant, ClientID: demoClient, Secret: demoSecret,
			Roles: []string{"IMAP.AccessAsApp", "full_access_as_app"}, Mailboxes: []string{"*"},
		}},
		Mailboxes: []sim.MailboxSeed{
			{Address: demoMailboxes[0]}, {Address: demoMailboxes[1]}, {Address: demoMailboxes[2]}, {Address: demoMailboxes[3]},
		},
	}
}

// deliverDemoMail drops the sample messages in, one every two seconds,
// round-robin over the mailboxes, then one more every ten seconds.
func deliverDemoMail(ctx context.Context, s *sim.Sim) {
	entries, _ := demoMail.ReadDir("demomail")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	for i := 0; ; i++ {
		name := names[i%len(names)]
		raw, _ := demoMail.ReadFile("demomail/" + name)
		if _, err := s.Store().Deliver(demoMailboxes[i%len(demoMailboxes)], "INBOX", raw, time.Now()); err != nil {
			return
		}
		wait := 2 * time.Second
		if i >= len(names) {
			wait = 10 * time.Second
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
