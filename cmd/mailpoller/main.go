// Command mailpoller turns mail arriving in Microsoft 365 / Exchange
// mailboxes into events on NATS JetStream.
//
//	mailpoller run -c config.yaml [--once]   poll the configured mailboxes
//	mailpoller check -c config.yaml          say what to fix, before running
//	mailpoller demo [--for 30s] [--json]     simulator + embedded NATS + poller (config built in)
//	mailpoller sim [-seed seed.yaml] [--imap-listen ADDR] [--http-listen ADDR]
//	                                         the Microsoft 365 simulator alone
//	mailpoller tail [--url URL] [--json]     print events as they arrive
//	mailpoller version                       module version and VCS revision
//
// Every command takes -h (or --help): it prints the command's flags on
// stdout and exits 0.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mailpoller/mailpoller/config"
)

// version, when set at build time with -ldflags "-X main.version=...",
// overrides the module version read from the build info.
var version = ""

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
		{"version", "print the module version and the VCS revision it was built from", cmdVersion},
	}
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	if isHelp(args[0]) || args[0] == "help" {
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		if wantsHelp(args[1:]) {
			// Asked for: the flags go to stdout and it is no error.
			c.run([]string{"-h"}, stdout, stdout)
			return 0
		}
		return c.run(args[1:], stdout, stderr)
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

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "--h"
}

// wantsHelp reports whether a command's args ask for help before any "--".
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if isHelp(a) {
			return true
		}
	}
	return false
}

// cmdVersion prints the module version and the VCS revision, time and
// state from the binary's build info.
func cmdVersion(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fmt.Fprintln(stdout, versionLine())
	return 0
}

// versionLine is "mailpoller <version> <revision> <time> [modified] <go>".
func versionLine() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "mailpoller " + orString(version, "unknown") + " (no build info)"
	}
	parts := []string{"mailpoller", orString(version, bi.Main.Version)}
	set := map[string]string{}
	for _, s := range bi.Settings {
		set[s.Key] = s.Value
	}
	parts = append(parts, "revision="+orString(set["vcs.revision"], "unknown"))
	if t := set["vcs.time"]; t != "" {
		parts = append(parts, "time="+t)
	}
	if set["vcs.modified"] == "true" {
		parts = append(parts, "modified")
	}
	return strings.Join(append(parts, bi.GoVersion), " ")
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// configFailed writes why the config at path was refused. When the file
// asks for log.format json (read leniently: the file may be broken
// elsewhere), each problem is one JSON record with its file, line, key and
// fix; else the problems are printed one a line.
func configFailed(w io.Writer, path string, err error) {
	var peek struct {
		Log struct {
			Format string `yaml:"format"`
		} `yaml:"log"`
	}
	if data, rerr := os.ReadFile(path); rerr == nil {
		yaml.Unmarshal(data, &peek) // best effort: only log.format is wanted
	}
	if peek.Log.Format != "json" {
		fmt.Fprintln(w, err)
		return
	}
	log := newLogger(config.Log{Format: "json"}, w)
	var list *config.Errors
	if !errors.As(err, &list) {
		log.Error("config refused", "file", path, "err", err)
		return
	}
	for _, p := range list.List {
		args := []any{"file", p.File, "line", p.Line, "key", p.Key, "problem", p.Msg}
		if p.Fix != "" {
			args = append(args, "fix", p.Fix)
		}
		log.Error("config refused", args...)
	}
}

// failedLine writes the summary line of one mailbox that failed: with
// log.format json a JSON record, else "FAILED <account>/<mailbox>: <err>".
func failedLine(w io.Writer, c config.Log, account, mailbox string, err error) {
	if c.Format == "json" {
		newLogger(c, w).Error("FAILED", "account", account, "mailbox", mailbox, "err", err)
		return
	}
	fmt.Fprintf(w, "FAILED %s/%s: %v\n", account, mailbox, err)
}
