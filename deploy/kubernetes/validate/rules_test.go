package validate

import (
	"log/slog"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// The alert rules parse as promtool parses them: rule groups, each
// expression valid PromQL, templates valid.
func TestAlertRules(t *testing.T) {
	groups, errs := rulefmt.ParseFile("../../prometheus/alerts.yml", false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	n := 0
	if groups != nil {
		for _, g := range groups.Groups {
			n += len(g.Rules)
		}
	}
	if n == 0 {
		t.Error("no rules")
	}
}
