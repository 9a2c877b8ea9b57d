package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/mailpoller/mailpoller/config"
	"github.com/mailpoller/mailpoller/configs"
	"github.com/mailpoller/mailpoller/poller"
	"github.com/mailpoller/mailpoller/publish"
	"github.com/mailpoller/mailpoller/sim"
)

// ruleFile is the Prometheus rule-file shape; unknown keys are errors.
type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func loadRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var rf ruleFile
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("prometheus/alerts.yml: %v", err)
	}
	return rf
}

// TestAlertRulesShape checks the rule groups as Prometheus would load them
// (names, durations, balanced expressions, a severity) and that the alerts
// the README promises exist.
func TestAlertRulesShape(t *testing.T) {
	rf := loadRules(t)
	if len(rf.Groups) == 0 {
		t.Fatal("no rule groups")
	}
	alerts := map[string]string{}
	for _, g := range rf.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: needs a name and rules", g.Name)
		}
		for _, r := range g.Rules {
			if (r.Alert == "") == (r.Record == "") {
				t.Errorf("group %s: a rule needs exactly one of alert and record: %+v", g.Name, r)
			}
			if _, dup := alerts[r.Alert]; dup {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			alerts[r.Alert] = r.Expr
			if strings.TrimSpace(r.Expr) == "" {
				t.Errorf("alert %s: empty expr", r.Alert)
			}
			if err := balanced(r.Expr); err != nil {
				t.Errorf("alert %s: %v in %q", r.Alert, err, r.Expr)
			}
			if r.For != "" {
				if _, err := model.ParseDuration(r.For); err != nil {
					t.Errorf("alert %s: for %q: %v", r.Alert, r.For, err)
				}
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("alert %s: severity %q, want critical or warning", r.Alert, s)
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("alert %s: no summary annotation", r.Alert)
			}
		}
	}
	for name, metric := range map[string]string{
		"MailpollerMailboxFailing": "mailpoller_seconds_since_last_success",
		"MailpollerBacklogGrowing": "mailpoller_backlog_messages",
		"MailpollerTokenErrors":    `mailpoller_errors_total{kind="auth"}`,
		"MailpollerDeadLetters":    "mailpoller_dead_letters_total",
		"MailpollerStalled":        `mailpoller_errors_total{kind="stalled"}`,
	} {
		if !strings.Contains(alerts[name], metric) {
			t.Errorf("alert %s: expr %q does not use %s", name, alerts[name], metric)
		}
	}
}

// balanced reports unbalanced (), {}, [] or quotes in a PromQL expression.
func balanced(expr string) error {
	var stack []rune
	pair := map[rune]rune{')': '(', '}': '{', ']': '['}
	inQuote := false
	for _, c := range expr {
		switch {
		case c == '"':
			inQuote = !inQuote
		case inQuote:
		case c == '(' || c == '{' || c == '[':
			stack = append(stack, c)
		case pair[c] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pair[c] {
				return fmt.Errorf("unbalanced %q", c)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if inQuote || len(stack) > 0 {
		return fmt.Errorf("unclosed %q", stack)
	}
	return nil
}

// TestPromtoolCheckRules runs promtool where it is installed.
func TestPromtoolCheckRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed; TestAlertRulesShape and TestMetricNamesExist check the rules")
	}
	if out, err := exec.Command(promtool, "check", "rules", "prometheus/alerts.yml").CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

// dashboardExprs returns every PromQL expression of the dashboard: panel
// targets (rows' panels included) and template variable queries.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("grafana/mailpoller.json")
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		ID      int                 `json:"id"`
		Type    string              `json:"type"`
		Title   string              `json:"title"`
		GridPos *struct{ H, W int } `json:"gridPos"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var d struct {
		Title      string            `json:"title"`
		UID        string            `json:"uid"`
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana/mailpoller.json: %v", err)
	}
	if d.Title == "" || d.UID == "" {
		t.Error("dashboard needs a title and a uid")
	}
	var exprs []string
	ids := map[int]bool{}
	var walk func([]json.RawMessage)
	walk = func(raws []json.RawMessage) {
		for _, raw := range raws {
			var p panel
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatalf("panel: %v", err)
			}
			if ids[p.ID] || p.ID == 0 {
				t.Errorf("panel %q: id %d missing or used twice", p.Title, p.ID)
			}
			ids[p.ID] = true
			if p.GridPos == nil || p.GridPos.H == 0 || p.GridPos.W == 0 {
				t.Errorf("panel %q: no gridPos", p.Title)
			}
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q: no queries", p.Title)
			}
			for _, tg := range p.Targets {
				if err := balanced(tg.Expr); err != nil {
					t.Errorf("panel %q: %v in %q", p.Title, err, tg.Expr)
				}
				exprs = append(exprs, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil || q.Query == "" {
			t.Errorf("variable %s: query %s", v.Name, v.Query)
		}
		exprs = append(exprs, q.Query)
	}
	if len(exprs) < 10 {
		t.Errorf("only %d queries in the dashboard", len(exprs))
	}
	return exprs
}

var metricRef = regexp.MustCompile(`\b(?:mailpoller|go|process)_[a-z0-9_]+\b`)

// builtin are series Prometheus makes itself.
var builtin = []string{"up"}

// TestMetricNamesExist collects the metric names a real poller registers
// (a --once run over the demo config against the simulator, with the
// storage collector run adds, gathered from the monitor's registry), adds
// those only declared in the code (series that need a certificate account
// or a dead letter to appear), and checks every metric the alert rules and
// the dashboard use is one of them.
func TestMetricNamesExist(t *testing.T) {
	gathered := runAndGather(t)
	declared := declaredNames(t)
	for name := range gathered {
		if strings.HasPrefix(name, "mailpoller_") && !declared[baseName(name)] {
			t.Errorf("%s is registered but the source scan does not find its declaration", name)
		}
	}
	for _, must := range []string{"mailpoller_seconds_since_last_success", "mailpoller_errors_total", "mailpoller_messages_published_total", "mailpoller_stored_bytes", "mailpoller_token_requests_total"} {
		if !gathered[must] {
			t.Errorf("the run did not export %s", must)
		}
	}
	known := func(name string) bool {
		return gathered[name] || declared[baseName(name)] || slices.Contains(builtin, name)
	}
	var uses []string
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			uses = append(uses, r.Expr)
			if strings.Contains(r.Expr, "up{") && !strings.Contains(r.Expr, `job="mailpoller"`) {
				t.Errorf("alert %s: up without job=\"mailpoller\"", r.Alert)
			}
		}
	}
	uses = append(uses, dashboardExprs(t)...)
	used := 0
	for _, e := range uses {
		for _, name := range metricRef.FindAllString(e, -1) {
			used++
			if !known(name) {
				t.Errorf("%q uses %s, which mailpoller does not export", e, name)
			}
		}
	}
	if used == 0 {
		t.Fatal("no metric names found in the rules and the dashboard")
	}
}

// baseName strips the histogram and summary series suffixes.
func baseName(name string) string {
	for _, s := range []string{"_bucket", "_sum", "_count"} {
		if b, ok := strings.CutSuffix(name, s); ok {
			return b
		}
	}
	return name
}

var declRe = regexp.MustCompile(`(?:Name:\s*|NewDesc\()"(mailpoller_[a-z0-9_]+)"`)

// declaredNames scans the poller and publish sources for metric names.
func declaredNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, dir := range []string{"../poller", "../publish"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range declRe.FindAllSubmatch(b, -1) {
				names[string(m[1])] = true
			}
		}
	}
	if len(names) < 10 {
		t.Fatalf("found only %d metric declarations: %v", len(names), names)
	}
	return names
}

// runAndGather polls the demo mailboxes once (one message each) and
// returns the names of every series family in the monitor's registry,
// histogram suffixes included.
func runAndGather(t *testing.T) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	addrs := []string{"support@contoso.test", "billing@contoso.test", "hr@contoso.test", "sales@contoso.test"}
	seed := &sim.Seed{
		Tenants: []sim.Tenant{{ID: "11111111-1111-1111-1111-111111111111", Domain: "contoso.test"}},
		Apps: []sim.App{{Tenant: "11111111-1111-1111-1111-111111111111", ClientID: "22222222-2222-2222-2222-222222222222",
			Secret: "demo-secret", Roles: []string{"IMAP.AccessAsApp", "full_access_as_app"}, Mailboxes: []string{"*"}}},
	}
	for _, a := range addrs {
		seed.Mailboxes = append(seed.Mailboxes, sim.MailboxSeed{Address: a})
	}
	s, err := sim.Start(ctx, seed, &sim.Options{CADir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, a := range addrs {
		raw := fmt.Sprintf("From: a@example.com\r\nTo: %s\r\nSubject: m%d\r\nMessage-ID: <m%d@example.com>\r\n\r\nhello\r\n", a, i, i)
		if _, err := s.Store().Deliver(a, "INBOX", []byte(raw), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	ep := s.Endpoints()
	t.Setenv("MAILPOLLER_DEMO_AUTHORITY", ep.Authority)
	t.Setenv("MAILPOLLER_DEMO_IMAP", ep.IMAP)
	t.Setenv("MAILPOLLER_DEMO_EWS", ep.EWS)
	t.Setenv("MAILPOLLER_DEMO_CA", ep.CAFile)
	cfg, err := config.Parse(configs.Demo, "configs/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.NATS.Embedded.StoreDir = filepath.Join(dir, "nats")
	log := slog.New(slog.DiscardHandler)
	nc, err := publish.Connect(ctx, cfg.NATS, log)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	mon := poller.NewMonitor()
	mon.Registry().MustRegister(nc.StorageCollector())
	for _, r := range poller.Run(ctx, poller.Options{Config: cfg, NATS: nc, Logger: log, Once: true, Monitor: mon}) {
		if r.Err != nil || r.Published != 1 {
			t.Fatalf("%s: published %d, err %v; want 1 and none", r.Mailbox.Address, r.Published, r.Err)
		}
	}
	mfs, err := mon.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if mf.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[mf.GetName()+s] = true
			}
		}
	}
	return names
}
