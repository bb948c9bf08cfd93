// Package grafana generates the Grafana dashboards of deploy/grafana/dashboards
// from scripts/services.conf: the platform overview and one dashboard per
// service. The JSON files are committed (Grafana provisions them from disk);
// `go run ./cmd/dashboards` rewrites them and the package's tests fail when a
// committed file differs from what the generator writes, when a PromQL
// expression does not parse, or when it names a metric the platform does not
// serve.
package grafana

import (
	"encoding/json"
	"fmt"

	"github.com/sagittarius-a/sagittarius/deploy/validate/servicesconf"
)

// DatasourceUID is the uid of the Prometheus datasource that
// deploy/grafana/provisioning/datasources provisions.
const DatasourceUID = "prometheus"

// Dashboard is the part of Grafana's dashboard JSON model the generator uses.
type Dashboard struct {
	UID           string     `json:"uid"`
	Title         string     `json:"title"`
	Description   string     `json:"description,omitempty"`
	Tags          []string   `json:"tags"`
	Editable      bool       `json:"editable"`
	GraphTooltip  int        `json:"graphTooltip"`
	Refresh       string     `json:"refresh"`
	SchemaVersion int        `json:"schemaVersion"`
	Version       int        `json:"version"`
	Time          TimeRange  `json:"time"`
	Templating    Templating `json:"templating"`
	Links         []Link     `json:"links"`
	Panels        []Panel    `json:"panels"`
}

// TimeRange is the dashboard's default time range.
type TimeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Templating holds the dashboard's variables.
type Templating struct {
	List []Variable `json:"list"`
}

// Variable is a query variable over Prometheus label values.
type Variable struct {
	Name       string      `json:"name"`
	Label      string      `json:"label"`
	Type       string      `json:"type"`
	Datasource *Datasource `json:"datasource"`
	Query      string      `json:"query"`
	Definition string      `json:"definition"`
	Refresh    int         `json:"refresh"`
	IncludeAll bool        `json:"includeAll"`
	Multi      bool        `json:"multi"`
	AllValue   string      `json:"allValue,omitempty"`
	Current    struct{}    `json:"current"`
	Sort       int         `json:"sort"`
}

// Link is a dashboard link (here: to the dashboards tagged sagittarius).
type Link struct {
	Title       string   `json:"title"`
	Type        string   `json:"type"`
	Tags        []string `json:"tags"`
	AsDropdown  bool     `json:"asDropdown"`
	IncludeVars bool     `json:"includeVars"`
	KeepTime    bool     `json:"keepTime"`
}

// Datasource refers to a provisioned datasource by uid.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// GridPos places a panel on the 24-column grid.
type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// Panel is a row, a time series or a stat panel.
type Panel struct {
	ID          int          `json:"id"`
	Type        string       `json:"type"`
	Title       string       `json:"title"`
	Description string       `json:"description,omitempty"`
	GridPos     GridPos      `json:"gridPos"`
	Datasource  *Datasource  `json:"datasource,omitempty"`
	Targets     []Target     `json:"targets,omitempty"`
	FieldConfig *FieldConfig `json:"fieldConfig,omitempty"`
	Options     any          `json:"options,omitempty"`
	Collapsed   *bool        `json:"collapsed,omitempty"`
	Panels      []Panel      `json:"panels,omitempty"`
}

// Target is one PromQL query of a panel.
type Target struct {
	RefID        string      `json:"refId"`
	Datasource   *Datasource `json:"datasource"`
	Expr         string      `json:"expr"`
	LegendFormat string      `json:"legendFormat"`
	Range        bool        `json:"range"`
	Instant      bool        `json:"instant"`
}

// FieldConfig sets the unit and thresholds of a panel's values.
type FieldConfig struct {
	Defaults  FieldDefaults `json:"defaults"`
	Overrides []any         `json:"overrides"`
}

// FieldDefaults are the unit, minimum and colour thresholds of a panel.
type FieldDefaults struct {
	Unit       string      `json:"unit"`
	Min        *float64    `json:"min,omitempty"`
	Thresholds *Thresholds `json:"thresholds,omitempty"`
}

// Thresholds colour a stat panel.
type Thresholds struct {
	Mode  string `json:"mode"`
	Steps []Step `json:"steps"`
}

// Step is one threshold: from Value (nil: from minus infinity) on, Color.
type Step struct {
	Color string   `json:"color"`
	Value *float64 `json:"value"`
}

func prometheus() *Datasource { return &Datasource{Type: "prometheus", UID: DatasourceUID} }

// query is one expression with its legend.
type query struct{ expr, legend string }

// chart is a panel before layout: a time series unless stat is set.
type chart struct {
	title, desc, unit string
	stat              bool
	queries           []query
}

// section is a row of charts.
type section struct {
	title  string
	charts []chart
}

// build lays sections out on the grid: a row header, then charts two or three
// per line (stats six per line), numbering panels from 1.
func build(d Dashboard, sections []section) Dashboard {
	id, y := 0, 0
	zero := 0.0
	for _, s := range sections {
		id++
		collapsed := false
		d.Panels = append(d.Panels, Panel{ID: id, Type: "row", Title: s.title, GridPos: GridPos{H: 1, W: 24, Y: y}, Collapsed: &collapsed})
		y++
		x, rowH := 0, 0
		for _, c := range s.charts {
			w, h := 12, 8
			if len(s.charts) == 3 || len(s.charts) >= 5 {
				w = 8
			}
			if c.stat {
				w, h = 4, 4
			}
			if x+w > 24 {
				x, y = 0, y+rowH
			}
			id++
			p := Panel{ID: id, Type: "timeseries", Title: c.title, Description: c.desc,
				GridPos: GridPos{H: h, W: w, X: x, Y: y}, Datasource: prometheus(),
				FieldConfig: &FieldConfig{Defaults: FieldDefaults{Unit: c.unit, Min: &zero}, Overrides: []any{}},
				Options: map[string]any{
					"legend":  map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": true},
					"tooltip": map[string]any{"mode": "multi", "sort": "desc"},
				}}
			if c.stat {
				p.Type = "stat"
				one := 1.0
				p.FieldConfig.Defaults.Thresholds = &Thresholds{Mode: "absolute", Steps: []Step{{Color: "red"}, {Color: "green", Value: &one}}}
				p.Options = map[string]any{"colorMode": "background", "graphMode": "none", "textMode": "value_and_name",
					"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false}}
			}
			for i, q := range c.queries {
				p.Targets = append(p.Targets, Target{RefID: string(rune('A' + i)), Datasource: prometheus(),
					Expr: q.expr, LegendFormat: q.legend, Range: !c.stat, Instant: c.stat})
			}
			d.Panels = append(d.Panels, p)
			x += w
			if h > rowH {
				rowH = h
			}
		}
		y += rowH
	}
	return d
}

func base(uid, title, desc string) Dashboard {
	return Dashboard{UID: uid, Title: title, Description: desc, Tags: []string{"sagittarius"},
		GraphTooltip: 1, Refresh: "30s", SchemaVersion: 39, Version: 1,
		Time:       TimeRange{From: "now-1h", To: "now"},
		Templating: Templating{List: []Variable{}},
		Links: []Link{{Title: "Sagittarius", Type: "dashboards", Tags: []string{"sagittarius"},
			AsDropdown: true, KeepTime: true}}}
}

// instanceVar is the $instance variable of a service's dashboard: its
// instances, all selected by default.
func instanceVar(job string) Variable {
	q := fmt.Sprintf(`label_values(up{job="%s"}, instance)`, job)
	return Variable{Name: "instance", Label: "instance", Type: "query", Datasource: prometheus(),
		Query: q, Definition: q, Refresh: 2, IncludeAll: true, Multi: true, AllValue: ".*", Sort: 1}
}

func quantiles(metric, by, sel string) []query {
	var qs []query
	for _, q := range []string{"0.5", "0.95", "0.99"} {
		legend := "p" + q[2:]
		if q == "0.5" {
			legend = "p50"
		}
		if by != "" {
			legend = "{{" + by + "}} " + legend
		}
		qs = append(qs, query{fmt.Sprintf(`histogram_quantile(%s, sum by (%s) (rate(%s_bucket%s[$__rate_interval])))`,
			q, join(by, "le"), metric, sel), legend})
	}
	return qs
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + ", " + b
}

// Overview is the platform dashboard: events by type, handler latency, outbox
// lag, dead letters, HTTP rate/errors/duration per service, the gateway's
// upstreams and the broker's queues.
func Overview(svcs []servicesconf.Service) Dashboard {
	d := base("sagittarius-overview", "Sagittarius: platform overview",
		"The choreography as it runs: events, handlers, outboxes, dead letters, HTTP per service, the gateway's upstreams and RabbitMQ's queues. One dashboard per service is linked at the top.")
	var ups []chart
	for _, s := range svcs {
		ups = append(ups, chart{title: s.Dir, stat: true, unit: "none",
			queries: []query{{fmt.Sprintf(`min(up{job="%s"})`, s.Dir), s.Dir}}})
	}
	ups = append(ups, chart{title: "rabbitmq", stat: true, unit: "none", queries: []query{{`min(up{job="rabbitmq"})`, "rabbitmq"}}},
		chart{title: "mysql", stat: true, unit: "none", queries: []query{{`min(mysql_up{job="mysqld"})`, "mysql"}}})
	return build(d, []section{
		{"Targets up (1 = every instance scraped)", ups},
		{"Events", []chart{
			{title: "Events published by type", desc: "Confirmed by the broker, per second.", unit: "ops",
				queries: []query{{`sum by (type) (rate(sagittarius_events_published_total[$__rate_interval]))`, "{{type}}"}}},
			{title: "Events consumed by outcome", desc: "handled, duplicate (inbox), retried, dead_lettered, unhandled (acked unread).", unit: "ops",
				queries: []query{{`sum by (outcome) (rate(sagittarius_events_consumed_total[$__rate_interval]))`, "{{outcome}}"}}},
			{title: "Events handled by type", unit: "ops",
				queries: []query{{`sum by (type) (rate(sagittarius_events_consumed_total{outcome="handled"}[$__rate_interval]))`, "{{type}}"}}},
			{title: "Handler latency p50 / p95 / p99 (all handlers)", unit: "s",
				queries: quantiles("sagittarius_event_handler_duration_seconds", "", "")},
			{title: "Handler latency p95 by event type", unit: "s",
				queries: []query{{`histogram_quantile(0.95, sum by (type, le) (rate(sagittarius_event_handler_duration_seconds_bucket[$__rate_interval])))`, "{{type}}"}}},
			{title: "Retried and dead-lettered deliveries by service", unit: "ops",
				queries: []query{{`sum by (job, outcome) (rate(sagittarius_events_consumed_total{outcome=~"retried|dead_lettered"}[$__rate_interval]))`, "{{job}} {{outcome}}"}}},
		}},
		{"Outbox and dead letters", []chart{
			{title: "Outbox pending rows by service", desc: "Events written with their business transaction and not yet confirmed by the broker.", unit: "none",
				queries: []query{{`sum by (job) (sagittarius_outbox_pending)`, "{{job}}"}}},
			{title: "Outbox oldest pending row age by service", desc: "Grows without bound when a relay stops draining.", unit: "s",
				queries: []query{{`max by (job) (sagittarius_outbox_oldest_age_seconds)`, "{{job}}"}}},
			{title: "Dead letters by service", desc: "Depth of each service's own dead-letter queue.", unit: "none",
				queries: []query{{`max by (job) (sagittarius_dead_letter_messages)`, "{{job}}"}}},
		}},
		{"HTTP per service (rate, errors, duration)", []chart{
			{title: "Requests by service", unit: "reqps",
				queries: []query{{`sum by (job) (rate(sagittarius_http_requests_total[$__rate_interval]))`, "{{job}}"}}},
			{title: "Error ratio (5xx) by service", unit: "percentunit",
				queries: []query{{`sum by (job) (rate(sagittarius_http_requests_total{code=~"5.."}[$__rate_interval])) / sum by (job) (rate(sagittarius_http_requests_total[$__rate_interval]))`, "{{job}}"}}},
			{title: "Duration p95 by service", unit: "s",
				queries: []query{{`histogram_quantile(0.95, sum by (job, le) (rate(sagittarius_http_request_duration_seconds_bucket[$__rate_interval])))`, "{{job}}"}}},
		}},
		{"Gateway upstreams", []chart{
			{title: "Upstream requests by upstream and code", unit: "reqps",
				queries: []query{{`sum by (upstream, code) (rate(sagittarius_gateway_upstream_requests_total[$__rate_interval]))`, "{{upstream}} {{code}}"}}},
			{title: "Upstream errors by upstream and reason", unit: "ops",
				queries: []query{{`sum by (upstream, reason) (rate(sagittarius_gateway_upstream_errors_total[$__rate_interval]))`, "{{upstream}} {{reason}}"}}},
			{title: "Upstream duration p95 by upstream", unit: "s",
				queries: []query{{`histogram_quantile(0.95, sum by (upstream, le) (rate(sagittarius_gateway_upstream_duration_seconds_bucket[$__rate_interval])))`, "{{upstream}}"}}},
		}},
		{"Broker", []chart{
			{title: "Services connected to the broker", desc: "Instances of each service whose bus is connected (sagittarius_broker_connected).", unit: "none",
				queries: []query{{`sum by (job) (sagittarius_broker_connected)`, "{{job}}"}}},
			{title: "Broker reconnections by service", unit: "ops",
				queries: []query{{`sum by (job) (rate(sagittarius_broker_reconnections_total[$__rate_interval]))`, "{{job}}"}}},
			{title: "Queue depth (ready + unacked) by queue", unit: "none",
				queries: []query{
					{`sum by (queue) (rabbitmq_detailed_queue_messages_ready{vhost="sagittarius"})`, "{{queue}} ready"},
					{`sum by (queue) (rabbitmq_detailed_queue_messages_unacked{vhost="sagittarius"})`, "{{queue}} unacked"}}},
			{title: "Consumers by queue", desc: "A service queue without a consumer fills up: every event waits.", unit: "none",
				queries: []query{{`sum by (queue) (rabbitmq_detailed_queue_consumers{vhost="sagittarius"})`, "{{queue}}"}}},
			{title: "Messages published into the broker", unit: "ops",
				queries: []query{{`sum(rate(rabbitmq_channel_messages_published_total[$__rate_interval]))`, "published"},
					{`sum(rate(rabbitmq_channel_messages_delivered_ack_total[$__rate_interval]))`, "delivered (manual ack)"}}},
		}},
	})
}

// ServiceDashboard is the dashboard of one service, filtered by its job and
// its $instance variable. Services with a bus get events, outbox, dead letters
// and broker; the gateway gets its upstreams. Every one gets HTTP by route.
func ServiceDashboard(s servicesconf.Service) Dashboard {
	title := s.Dir
	if s.HasBus() {
		title = s.Dir + " (" + s.Name + ")"
	}
	d := base("sagittarius-"+s.Dir, "Sagittarius: "+title,
		fmt.Sprintf("The service %s: Prometheus job %q, /metrics on its HTTP port %d.", s.Dir, s.Dir, s.Port))
	d.Tags = append(d.Tags, "service")
	d.Templating.List = append(d.Templating.List, instanceVar(s.Dir))
	sel := fmt.Sprintf(`{job="%s", instance=~"$instance"}`, s.Dir)
	with := func(extra string) string { // sel with one more matcher
		return fmt.Sprintf(`{job="%s", instance=~"$instance", %s}`, s.Dir, extra)
	}
	sections := []section{{"Process", []chart{
		{title: "Instances up", stat: true, unit: "none", queries: []query{{`sum(up` + sel + `)`, "up"}}},
		{title: "Resident memory", unit: "bytes", queries: []query{{`process_resident_memory_bytes` + sel, "{{instance}}"}}},
		{title: "CPU", unit: "percentunit", queries: []query{{`rate(process_cpu_seconds_total` + sel + `[$__rate_interval])`, "{{instance}}"}}},
		{title: "Goroutines", unit: "none", queries: []query{{`go_goroutines` + sel, "{{instance}}"}}},
	}}}
	if s.HasBus() {
		sections = append(sections,
			section{"Events", []chart{
				{title: "Published by type", unit: "ops",
					queries: []query{{`sum by (type) (rate(sagittarius_events_published_total` + sel + `[$__rate_interval]))`, "{{type}}"}}},
				{title: "Consumed by type and outcome", unit: "ops",
					queries: []query{{`sum by (type, outcome) (rate(sagittarius_events_consumed_total` + sel + `[$__rate_interval]))`, "{{type}} {{outcome}}"}}},
				{title: "Handler latency p50 / p95 / p99", unit: "s",
					queries: quantiles("sagittarius_event_handler_duration_seconds", "", sel)},
				{title: "Handler latency p95 by type", unit: "s",
					queries: []query{{`histogram_quantile(0.95, sum by (type, le) (rate(sagittarius_event_handler_duration_seconds_bucket` + sel + `[$__rate_interval])))`, "{{type}}"}}},
			}},
			section{"Outbox, dead letters, broker", []chart{
				{title: "Outbox pending rows", unit: "none", queries: []query{{`sagittarius_outbox_pending` + sel, "{{instance}}"}}},
				{title: "Outbox oldest pending row age", unit: "s", queries: []query{{`sagittarius_outbox_oldest_age_seconds` + sel, "{{instance}}"}}},
				{title: "Dead letters", unit: "none", queries: []query{{`max(sagittarius_dead_letter_messages` + sel + `)`, "dead letters"}}},
				{title: "Broker connected", unit: "none", queries: []query{{`sagittarius_broker_connected` + sel, "{{instance}}"}}},
				{title: "Broker reconnections", unit: "ops", queries: []query{{`rate(sagittarius_broker_reconnections_total` + sel + `[$__rate_interval])`, "{{instance}}"}}},
				{title: "Own queues: depth and consumers", unit: "none", queries: []query{
					{fmt.Sprintf(`sum by (queue) (rabbitmq_detailed_queue_messages_ready{vhost="sagittarius", queue=~"%s(\\..+)?"})`, regexpQuote(s.Name)), "{{queue}} ready"},
					{fmt.Sprintf(`sum by (queue) (rabbitmq_detailed_queue_consumers{vhost="sagittarius", queue=~"%s(\\..+)?"})`, regexpQuote(s.Name)), "{{queue}} consumers"}}},
			}})
	} else {
		sections = append(sections, section{"Upstreams", []chart{
			{title: "Requests by upstream and code", unit: "reqps",
				queries: []query{{`sum by (upstream, code) (rate(sagittarius_gateway_upstream_requests_total` + sel + `[$__rate_interval]))`, "{{upstream}} {{code}}"}}},
			{title: "Errors by upstream and reason", unit: "ops",
				queries: []query{{`sum by (upstream, reason) (rate(sagittarius_gateway_upstream_errors_total` + sel + `[$__rate_interval]))`, "{{upstream}} {{reason}}"}}},
			{title: "Duration p50 / p95 / p99 by upstream", unit: "s",
				queries: quantiles("sagittarius_gateway_upstream_duration_seconds", "upstream", sel)},
		}})
	}
	sections = append(sections, section{"HTTP (rate, errors, duration) by route", []chart{
		{title: "Requests by route and code", unit: "reqps",
			queries: []query{{`sum by (method, route, code) (rate(sagittarius_http_requests_total` + sel + `[$__rate_interval]))`, "{{method}} {{route}} {{code}}"}}},
		{title: "Error ratio (5xx)", unit: "percentunit",
			queries: []query{{`sum(rate(sagittarius_http_requests_total` + with(`code=~"5.."`) + `[$__rate_interval])) / sum(rate(sagittarius_http_requests_total` + sel + `[$__rate_interval]))`, "5xx"}}},
		{title: "Duration p95 by route", unit: "s",
			queries: []query{{`histogram_quantile(0.95, sum by (method, route, le) (rate(sagittarius_http_request_duration_seconds_bucket` + sel + `[$__rate_interval])))`, "{{method}} {{route}}"}}},
	}})
	return build(d, sections)
}

// regexpQuote escapes the dots of a service name for a PromQL regexp inside a
// double-quoted string ("sales.orders" -> `sales\\.orders`).
func regexpQuote(name string) string {
	out := ""
	for _, r := range name {
		if r == '.' {
			out += `\\.`
			continue
		}
		out += string(r)
	}
	return out
}

// Files returns every dashboard file, name -> indented JSON with a final
// newline: sagittarius-overview.json and sagittarius-<dir>.json per service.
func Files(svcs []servicesconf.Service) (map[string][]byte, error) {
	out := map[string][]byte{}
	add := func(d Dashboard) error {
		b, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			return err
		}
		out[d.UID+".json"] = append(b, '\n')
		return nil
	}
	if err := add(Overview(svcs)); err != nil {
		return nil, err
	}
	for _, s := range svcs {
		if err := add(ServiceDashboard(s)); err != nil {
			return nil, err
		}
	}
	return out, nil
}
