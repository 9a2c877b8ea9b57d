package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mailpoller/mailpoller/auth"
	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/poller"
	"github.com/mailpoller/mailpoller/publish"
	"github.com/mailpoller/mailpoller/source"
)

// checkRow is one line of `mailpoller check`.
type checkRow struct {
	Check  string `json:"check"`
	Target string `json:"target"`
	OK     bool   `json:"ok"`
	// Skipped rows were not checked because an earlier check failed
	// (Detail says which); they count as neither ok nor failed.
	Skipped bool   `json:"skipped,omitempty"`
	Detail  string `json:"detail,omitempty"`
	Cause   string `json:"cause,omitempty"`
	Fix     string `json:"fix,omitempty"`
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs, path := flags("check", stderr, "config file")
	account := fs.String("account", "", "check only this account")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	timeout := fs.Duration("timeout", 30*time.Second, "time limit for each network check")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		if *asJSON {
			json.NewEncoder(stdout).Encode([]checkRow{{Check: "config", Target: *path, Cause: err.Error()}})
		} else {
			fmt.Fprintln(stderr, err)
		}
		return 2
	}
	rows := []checkRow{{Check: "config", Target: *path, OK: true, Detail: fmt.Sprintf("%d accounts, %d mailboxes", len(cfg.Accounts), len(cfg.Mailboxes()))}}
	ctx := context.Background()
	trs := poller.NewTransports(slog.New(slog.DiscardHandler))
	found, graphs := false, false
	for i := range cfg.Accounts {
		a := &cfg.Accounts[i]
		if *account != "" && a.Name != *account {
			continue
		}
		found = true
		graphs = graphs || a.Protocol == "graph"
		rows = append(rows, checkAccount(ctx, trs, cfg, a, *timeout)...)
	}
	if *account != "" && !found {
		fmt.Fprintf(stderr, "mailpoller check: no account %q in %s\n", *account, *path)
		return 2
	}
	if graphs && cfg.Graph.NotificationsURL != "" {
		rows = append(rows, checkNotifications(ctx, cfg, *timeout))
	}
	rows = append(rows, checkNATS(ctx, cfg, *timeout))
	failed := 0
	for _, r := range rows {
		if !r.OK && !r.Skipped {
			failed++
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rows)
	} else {
		printRows(stdout, rows)
	}
	if failed > 0 {
		return 1
	}
	return 0
}

func printRows(w io.Writer, rows []checkRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		status := "ok"
		switch {
		case r.Skipped:
			status = "skipped"
		case !r.OK:
			status = "FAILED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", status, r.Check, r.Target, r.Detail)
	}
	tw.Flush()
	for _, r := range rows {
		if r.OK || r.Skipped {
			continue
		}
		fmt.Fprintf(w, "\n%s %s FAILED\n  cause: %s\n", r.Check, r.Target, r.Cause)
		if r.Fix != "" {
			fmt.Fprintf(w, "  fix:   %s\n", strings.ReplaceAll(r.Fix, "\n", "\n         "))
		}
	}
}

// checkAccount gets a token, inspects its claims, and probes every mailbox
// through the account's transport, the same one `run` uses.
func checkAccount(ctx context.Context, trs *poller.Transports, cfg *config.Config, a *config.Account, timeout time.Duration) []checkRow {
	target := a.Name
	admin := source.Admin{Account: a.Name, TenantID: a.TenantID, ClientID: a.ClientID}
	tr, err := trs.For(a)
	if err != nil {
		return []checkRow{{Check: "transport", Target: target, Cause: err.Error(), Fix: "fix the account's tls.ca_file or protocol"}}
	}
	if !a.OAuth() {
		// No token to inspect: the login is tried by each mailbox's probe.
		return checkMailboxes(ctx, tr, cfg, a, admin, true, timeout)
	}
	ts, err := trs.TokenSource(a)
	if err != nil {
		r := checkRow{Check: "credentials", Target: target}
		r.Cause, r.Fix = failure(err, admin)
		return []checkRow{r}
	}
	var rows []checkRow
	if exp, ok := ts.CertificateExpiry(); ok {
		left := time.Until(exp)
		r := checkRow{Check: "certificate", Target: target, OK: left > 0, Detail: "expires " + exp.Format(time.DateOnly)}
		if left <= 0 {
			r.Cause, r.Fix = "the certificate has expired", "upload a new certificate to the app registration and point certificate.cert_file/key_file at it"
		} else if left < 30*24*time.Hour {
			r.Detail += fmt.Sprintf(" (in %d days: renew it soon)", int(left.Hours()/24))
		}
		rows = append(rows, r)
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	tok, err := ts.Token(tctx)
	cancel()
	if err != nil {
		r := checkRow{Check: "token", Target: target}
		r.Cause, r.Fix = failure(err, admin)
		return append(rows, r)
	}
	claims, err := auth.ParseClaims(tok.Value)
	if err != nil {
		return append(rows, checkRow{Check: "token", Target: target, Cause: "the token is not a readable JWT: " + err.Error(),
			Fix: "check that authority points at Entra ID (or the simulator)"})
	}
	admin.ObjectID = claims.ObjectID
	rows = append(rows, checkRow{Check: "token", Target: target, OK: true, Detail: fmt.Sprintf("tenant=%s app=%s aud=%s roles=[%s] expires=%s",
		claims.Tenant, claims.AppID, claims.Audience, strings.Join(claims.Roles, ","), claims.Expiry.Format(time.TimeOnly))})
	role := tr.Role()
	permitted := true
	if cause := poller.MissingRole(claims, role); cause != "" {
		permitted = false
		rows = append(rows, checkRow{Check: "permission", Target: target, Cause: cause, Fix: poller.ConsentFix(a.ClientID, role)})
	} else {
		rows = append(rows, checkRow{Check: "permission", Target: target, OK: true, Detail: role})
	}
	return append(rows, checkMailboxes(ctx, tr, cfg, a, admin, permitted, timeout)...)
}

// checkMailboxes probes a's mailboxes, or marks them skipped when the
// permission check failed.
func checkMailboxes(ctx context.Context, tr source.Transport, cfg *config.Config, a *config.Account, admin source.Admin, permitted bool, timeout time.Duration) []checkRow {
	var rows []checkRow
	for _, mb := range cfg.Mailboxes() {
		if mb.Account != a {
			continue
		}
		if !permitted {
			// Without the role every mailbox fails the same way; one
			// diagnosis, not one per mailbox prescribing the wrong fix.
			rows = append(rows, checkRow{Check: "mailbox", Target: mb.Account.Name + "/" + mb.Address + "/" + mb.Folder,
				Skipped: true, Detail: "not checked: fix the permission first"})
			continue
		}
		mctx, cancel := context.WithTimeout(ctx, timeout)
		admin.Mailbox = mb.Address
		rows = append(rows, checkMailbox(mctx, tr, mb, admin))
		cancel()
	}
	return rows
}

// failure is the cause and fix of a failed check. check tries once, so a
// transient token error says to run it again rather than that it retries
// (the token source's own fix text is written for run).
func failure(err error, admin source.Admin) (cause, fix string) {
	var ae *auth.Error
	if errors.As(err, &ae) && ae.Transient {
		c := *ae
		c.Fix = ""
		cause = c.Error()
		if ae != err {
			cause = err.Error()
		}
		return cause, "Entra ID had a temporary problem and check does not retry: run check again in a few minutes " +
			"(run retries such errors with backoff)"
	}
	return err.Error(), poller.Fix(err, admin)
}

// checkMailbox probes one mailbox through its transport.
func checkMailbox(ctx context.Context, tr source.Transport, mb config.Mailbox, admin source.Admin) checkRow {
	r := checkRow{Check: "mailbox", Target: mb.Account.Name + "/" + mb.Address + "/" + mb.Folder}
	p, err := tr.Probe(ctx, mb.Mailbox)
	if err != nil {
		r.Cause, r.Fix = failure(err, admin)
		return r
	}
	r.OK = true
	r.Detail = fmt.Sprintf("%d messages, %d unread", p.Messages, p.Unread)
	if p.MoveToExists != nil && !*p.MoveToExists {
		r.OK = false
		r.Cause = fmt.Sprintf("move_to folder %q does not exist", mb.MoveTo)
		r.Fix = "create the folder in the mailbox, or fix move_to"
	}
	return r
}

// checkNATS connects to the configured NATS (a running embedded server
// included, with the credentials file in its store) and checks the stream,
// buckets and max payload.
func checkNATS(ctx context.Context, cfg *config.Config, timeout time.Duration) checkRow {
	nc := cfg.NATS
	cctx, cancel := context.WithTimeout(ctx, min(timeout, 10*time.Second))
	defer cancel()
	var conn *publish.Conn
	var err error
	target := nc.URL
	if nc.URL == "" {
		e := nc.Embedded
		target = "embedded " + e.Listen
		switch {
		case strings.EqualFold(e.Listen, publish.ListenNone):
			return checkRow{Check: "nats", Target: target, OK: true, Detail: "embedded server without a port (in-process only), store " + e.StoreDir}
		case strings.HasSuffix(e.Listen, ":0") || strings.HasSuffix(e.Listen, ":-1"):
			return checkRow{Check: "nats", Target: target, OK: true, Detail: "embedded server on a free port, store " + e.StoreDir}
		}
		conn, err = publish.ConnectEmbedded(cctx, nc, slog.New(slog.DiscardHandler)) // a running daemon's embedded server
		if errors.Is(err, publish.ErrNoCredentials) || errors.Is(err, nats.ErrNoServers) {
			return checkRow{Check: "nats", Target: target, OK: true, Detail: "no server running there yet; `run` starts it with store " + e.StoreDir}
		}
		if err != nil {
			return checkRow{Check: "nats", Target: target, Cause: err.Error(),
				Fix: "is another program on nats.embedded.listen? the embedded server admits the NKey in " + publish.CredentialsPath(e.StoreDir)}
		}
	} else {
		conn, err = publish.Connect(cctx, nc, slog.New(slog.DiscardHandler))
		if err != nil {
			return checkRow{Check: "nats", Target: target, Cause: err.Error(), Fix: "check nats.url, credentials and tls"}
		}
	}
	defer conn.Close()
	return checkRow{Check: "nats", Target: target, OK: true, Detail: fmt.Sprintf("stream %s, KV %s, object store %s, max payload %d bytes",
		conn.Stream(), publish.StateBucket, publish.BlobBucket, conn.MaxPayload())}
}
