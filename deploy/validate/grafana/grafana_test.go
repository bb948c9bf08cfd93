package grafana

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/sagittarius-a/sagittarius/deploy/validate/servicesconf"
)

const dashboardsDir = "../../grafana/dashboards"

// promql is the parser of Prometheus's own code, with its default options.
var promql = parser.NewParser(parser.Options{})

// platformMetrics are the families the services serve (fixed names, see
// issue 13); histograms are listed by their family name.
var platformMetrics = map[string]bool{
	"sagittarius_events_published_total":            true,
	"sagittarius_events_consumed_total":             true,
	"sagittarius_event_handler_duration_seconds":    true,
	"sagittarius_outbox_pending":                    true,
	"sagittarius_outbox_oldest_age_seconds":         true,
	"sagittarius_dead_letter_messages":              true,
	"sagittarius_broker_connected":                  true,
	"sagittarius_broker_reconnections_total":        true,
	"sagittarius_http_requests_total":               true,
	"sagittarius_http_request_duration_seconds":     true,
	"sagittarius_gateway_upstream_requests_total":   true,
	"sagittarius_gateway_upstream_errors_total":     true,
	"sagittarius_gateway_upstream_duration_seconds": true,
	// Prometheus itself, the Go and process collectors, mysqld-exporter, rabbitmq_prometheus.
	"up": true, "mysql_up": true, "go_goroutines": true,
	"process_resident_memory_bytes": true, "process_cpu_seconds_total": true,
	"rabbitmq_detailed_queue_messages_ready": true, "rabbitmq_detailed_queue_messages_unacked": true,
	"rabbitmq_detailed_queue_consumers": true, "rabbitmq_channel_messages_published_total": true,
	"rabbitmq_channel_messages_delivered_ack_total": true,
}

func services(t *testing.T) []servicesconf.Service {
	t.Helper()
	svcs, err := servicesconf.ReadFile("../../../scripts/services.conf")
	if err != nil {
		t.Fatal(err)
	}
	return svcs
}

// committed reads every dashboard file of deploy/grafana/dashboards.
func committed(t *testing.T) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

func TestCommittedDashboardsAreTheGeneratedOnes(t *testing.T) {
	want, err := Files(services(t))
	if err != nil {
		t.Fatal(err)
	}
	got := committed(t)
	for name, b := range want {
		if !bytes.Equal(got[name], b) {
			t.Errorf("%s differs from the generator's output: run `go run ./cmd/dashboards` in deploy/validate", name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s is not written by the generator", name)
		}
	}
	// The issue asks for an overview and one dashboard per service.
	if len(want) != len(services(t))+1 {
		t.Errorf("%d dashboards, want the overview and one per service (%d)", len(want), len(services(t))+1)
	}
}

// expr is one PromQL expression found in a dashboard file.
type expr struct{ file, panel, text string }

// exprsOf decodes a dashboard file strictly (no field the model does not know)
// and returns its expressions and its variables' label_values queries.
func exprsOf(t *testing.T, name string, b []byte) []expr {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("%s: invalid JSON", name)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var d Dashboard
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var out []expr
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("%s: panel id %d used twice", name, p.ID)
		}
		ids[p.ID] = true
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("%s: panel %q has no query", name, p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != DatasourceUID {
				t.Errorf("%s: panel %q: datasource is not the provisioned %q", name, p.Title, DatasourceUID)
			}
			out = append(out, expr{name, p.Title, tg.Expr})
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.+), [a-z_]+\)$`)
	for _, v := range d.Templating.List {
		m := labelValues.FindStringSubmatch(v.Query)
		if m == nil {
			t.Errorf("%s: variable %s: query %q is not label_values(selector, label)", name, v.Name, v.Query)
			continue
		}
		out = append(out, expr{name, "variable " + v.Name, m[1]})
	}
	return out
}

// grafanaVars replaces Grafana's variables with values PromQL accepts.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__range", "1h", "$instance", ".*")

func TestEveryExpressionParsesAndNamesServedMetrics(t *testing.T) {
	jobs := map[string]bool{"rabbitmq": true, "rabbitmq-queues": true, "mysqld": true, "prometheus": true}
	for _, s := range services(t) {
		jobs[s.Dir] = true
	}
	n := 0
	files := committed(t)
	if len(files) == 0 {
		t.Fatal("no dashboard in " + dashboardsDir)
	}
	for name, b := range files {
		for _, e := range exprsOf(t, name, b) {
			n++
			if strings.Contains(grafanaVars.Replace(e.text), "$") {
				t.Errorf("%s: %s: unknown Grafana variable in %s", e.file, e.panel, e.text)
				continue
			}
			ast, err := promql.ParseExpr(grafanaVars.Replace(e.text))
			if err != nil {
				t.Errorf("%s: %s: %s: %v", e.file, e.panel, e.text, err)
				continue
			}
			parser.Inspect(ast, func(node parser.Node, _ []parser.Node) error {
				vs, ok := node.(*parser.VectorSelector)
				if !ok {
					return nil
				}
				family := strings.TrimSuffix(vs.Name, "_bucket")
				if !platformMetrics[vs.Name] && !platformMetrics[family] {
					t.Errorf("%s: %s: metric %s is not one the platform serves", e.file, e.panel, vs.Name)
				}
				for _, m := range vs.LabelMatchers {
					if m.Name == "job" && m.Type == labels.MatchEqual && !jobs[m.Value] {
						t.Errorf("%s: %s: job %q is neither a service of services.conf nor a job of deploy/prometheus/prometheus.yml", e.file, e.panel, m.Value)
					}
				}
				return nil
			})
		}
	}
	if n < 40 {
		t.Errorf("only %d expressions checked", n)
	}
}

// The check must catch what it claims to: a broken expression, an unknown
// metric, a stray field.
func TestTheChecksFailOnBrokenDashboards(t *testing.T) {
	if _, err := promql.ParseExpr(grafanaVars.Replace(`sum by (type) (rate(sagittarius_events_published_total[$__rate_interval])`)); err == nil {
		t.Error("an unbalanced parenthesis parsed")
	}
	d := Overview(services(t))
	d.Panels[1].Targets[0].Expr = "sum(rate(sagittarius_no_such_metric[5m]))"
	b, _ := json.Marshal(d)
	got := exprsOf(t, "broken.json", b)
	found := false
	for _, e := range got {
		if strings.Contains(e.text, "sagittarius_no_such_metric") {
			found = true
			ast, err := promql.ParseExpr(e.text)
			if err != nil {
				t.Fatal(err)
			}
			vs := ast.(*parser.AggregateExpr).Expr.(*parser.Call).Args[0].(*parser.MatrixSelector).VectorSelector.(*parser.VectorSelector)
			if platformMetrics[vs.Name] {
				t.Error("an unknown metric passed the metric check")
			}
		}
	}
	if !found {
		t.Error("the broken expression was not extracted")
	}
	stray := bytes.Replace(b, []byte(`"refresh":"30s"`), []byte(`"refresh":"30s","refesh":"1m"`), 1)
	dec := json.NewDecoder(bytes.NewReader(stray))
	dec.DisallowUnknownFields()
	if err := dec.Decode(new(Dashboard)); err == nil {
		t.Error("a misspelt field was accepted")
	}
}

func TestEveryServiceHasItsDashboard(t *testing.T) {
	files := committed(t)
	var missing []string
	for _, s := range services(t) {
		if _, ok := files["sagittarius-"+s.Dir+".json"]; !ok {
			missing = append(missing, s.Dir)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("no dashboard for %v", missing)
	}
}
