// Command mailpoller turns mail arriving in Microsoft 365 / Exchange
// mailboxes into events on NATS JetStream.
//
//	mailpoller run -c config.yaml [--once]   poll the configured mailboxes
//	mailpoller demo [--for 30s] [--json]     simulator + embedded NATS + poller
//	mailpoller sim -seed seed.yaml           the Microsoft 365 simulator alone
//	mailpoller version
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type command struct {
	name  string
	usage string
	run   func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"run", "poll the configured mailboxes and publish events", cmdRun},
		{"demo", "run the simulator, an embedded NATS server and the poller, and print events", cmdDemo},
		{"check", "check the config, tokens, permissions, mailboxes and NATS; say what to fix", cmdCheck},
		{"sim", "start the local Microsoft 365 simulator", cmdSim},
		{"tail", "print events from NATS as they arrive", cmdTail},
		{"version", "print the version", func([]string, io.Writer, io.Writer) int { fmt.Println("mailpoller", version); return 0 }},
	}
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		return 2
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "mailpoller: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: mailpoller <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.usage)
	}
}

// flags starts the flag set of a command that reads the config file, with
// its -c flag (default: $MAILPOLLER_CONFIG, else mailpoller.yaml).
func flags(name string, stderr io.Writer, usage string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs, fs.String("c", envOr("MAILPOLLER_CONFIG", "mailpoller.yaml"), usage)
}
