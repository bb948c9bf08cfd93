package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
)

// otlpSpan is one span received by the test's OTLP/HTTP receiver.
type otlpSpan struct {
	service               string // resource service.name
	name                  string
	kind                  tracepb.Span_SpanKind
	traceID, id, parent   string // hex
	attrs                 map[string]string
	statusCode, statusMsg string
}

// otlpReceiver is an OTLP/HTTP trace receiver (POST /v1/traces,
// application/x-protobuf): what Jaeger or a collector would be to the
// services.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []otlpSpan
}

func startOTLPReceiver(t *testing.T) (*otlpReceiver, string) {
	t.Helper()
	rcv := &otlpReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
			http.NotFound(w, r)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rcv.add(&req)
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return rcv, srv.URL
}

func (r *otlpReceiver) add(req *coltracepb.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				attrs := map[string]string{}
				for _, kv := range s.GetAttributes() {
					v := kv.GetValue()
					switch {
					case v.GetStringValue() != "":
						attrs[kv.GetKey()] = v.GetStringValue()
					default:
						attrs[kv.GetKey()] = fmt.Sprint(v.GetIntValue())
					}
				}
				r.spans = append(r.spans, otlpSpan{
					service: service, name: s.GetName(), kind: s.GetKind(),
					traceID: hex.EncodeToString(s.GetTraceId()), id: hex.EncodeToString(s.GetSpanId()),
					parent: hex.EncodeToString(s.GetParentSpanId()), attrs: attrs,
					statusCode: s.GetStatus().GetCode().String(), statusMsg: s.GetStatus().GetMessage(),
				})
			}
		}
	}
}

// trace returns the spans received so far of one trace.
func (r *otlpReceiver) trace(traceID string) []otlpSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []otlpSpan
	for _, s := range r.spans {
		if s.traceID == traceID {
			out = append(out, s)
		}
	}
	return out
}

func findSpan(spans []otlpSpan, service, name string) *otlpSpan {
	for i := range spans {
		if spans[i].service == service && spans[i].name == name {
			return &spans[i]
		}
	}
	return nil
}

func describe(spans []otlpSpan) string {
	var lines []string
	for _, s := range spans {
		lines = append(lines, fmt.Sprintf("  %s %s %q parent=%s", s.service, s.id, s.name, s.parent))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestOneTracePerOrder runs the platform with every process exporting its
// spans over OTLP/HTTP to a receiver in the test, places an order through
// the gateway under a traceparent of the test's own, waits for the order to
// be confirmed, and checks that the whole choreography is ONE trace: the
// gateway's server and client spans, the orders service's server span, the
// outbox write and publish of order_placed, the consumer spans of
// inventory and payments and the events their handlers cause, and the
// orders service's confirmation. Every span's parent must be in the trace
// (a service that drops the context breaks the chain and fails the test),
// and the messaging spans carry the OpenTelemetry messaging attributes.
func TestOneTracePerOrder(t *testing.T) {
	rcv, endpoint := startOTLPReceiver(t)
	c := startCluster(t, "OTEL_EXPORTER_OTLP_ENDPOINT="+endpoint, "OTEL_BSP_SCHEDULE_DELAY=100")
	cu := newCustomer(t, c)
	p := newProduct(t, c, 990, 5)

	// Place the order under a trace of our own; retry (a new trace each
	// time) while orders has not yet heard of the customer or product.
	const clientSpan = "00f067aa0ba902b7"
	var traceID, requestID string
	var o orderevents.Order
	payload, _ := json.Marshal(orderBody(cu.ID, "tok_visa", line(p.ID, 2)))
	deadline := time.Now().Add(sagaTimeout)
	for {
		traceID, requestID = randomID()+randomID()+"abcdef123456", "trace-test-"+randomID()
		req, _ := http.NewRequest(http.MethodPost, c.Gateway+"/orders/v1/orders", bytes.NewReader(payload))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Traceparent", "00-"+traceID+"-"+clientSpan+"-01")
		req.Header.Set("X-Request-Id", requestID)
		res, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusCreated {
			if err := json.Unmarshal(b, &o); err != nil {
				t.Fatal(err)
			}
			break
		}
		if res.StatusCode != http.StatusUnprocessableEntity || time.Now().After(deadline) {
			t.Fatalf("POST /orders/v1/orders: %d %s", res.StatusCode, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitOrder(t, o, "confirmed with a shipment", func(o orderevents.Order) bool {
		return o.Status == orderevents.StatusConfirmed && o.ShipmentID != ""
	})

	const (
		gateway  = "gateway"
		orders   = "sales.orders"
		stock    = "logistics.inventory"
		payments = "finance.payments"
		shipping = "logistics.shipments"
	)
	want := []struct{ service, name string }{
		{gateway, "POST /orders/*"},
		{gateway, "POST orders"},
		{orders, "POST /v1/orders"},
		{orders, "create sales.orders.order_placed"},
		{orders, "publish sales.orders.order_placed"},
		{stock, "process sales.orders.order_placed"},
		{stock, "create logistics.inventory.stock_reserved"},
		{stock, "publish logistics.inventory.stock_reserved"},
		{payments, "process sales.orders.order_placed"},
		{payments, "process logistics.inventory.stock_reserved"},
		{payments, "create finance.payments.payment_captured"},
		{payments, "publish finance.payments.payment_captured"},
		{orders, "process finance.payments.payment_captured"},
		{orders, "create sales.orders.order_confirmed"}, // the confirmation
		{orders, "publish sales.orders.order_confirmed"},
		{shipping, "process sales.orders.order_confirmed"},
		{shipping, "publish logistics.shipments.shipment_scheduled"},
		{orders, "process logistics.shipments.shipment_scheduled"},
	}
	var spans []otlpSpan
	missing := want
	for wait := time.Now().Add(30 * time.Second); ; {
		spans = rcv.trace(traceID)
		missing = missing[:0:0]
		for _, w := range want {
			if findSpan(spans, w.service, w.name) == nil {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(wait) {
			t.Fatalf("trace %s lacks %v after 30 s; it has:\n%s", traceID, missing, describe(spans))
		}
		time.Sleep(100 * time.Millisecond)
	}

	// One unbroken tree: every parent is in the trace, or is our client span.
	byID := map[string]*otlpSpan{}
	for i := range spans {
		byID[spans[i].id] = &spans[i]
	}
	for _, s := range spans {
		if s.parent == clientSpan {
			if s.service != gateway {
				t.Errorf("%s %q hangs off the client's span: the gateway's span is missing from the chain", s.service, s.name)
			}
			continue
		}
		if byID[s.parent] == nil {
			t.Errorf("%s %q has parent %q, which is not in the trace: a service dropped the context\n%s", s.service, s.name, s.parent, describe(spans))
		}
	}
	parentOf := func(service, name string) *otlpSpan {
		s := findSpan(spans, service, name)
		return byID[s.parent]
	}
	for _, edge := range []struct {
		child, parent struct{ service, name string }
	}{
		{want[1], want[0]}, {want[2], want[1]}, {want[3], want[2]}, {want[4], want[3]},
		{want[5], want[4]}, {want[8], want[4]}, {want[13], want[12]}, {want[15], want[14]},
	} {
		if got := parentOf(edge.child.service, edge.child.name); got == nil || got.service != edge.parent.service || got.name != edge.parent.name {
			t.Errorf("parent of %v is %+v, want %v", edge.child, got, edge.parent)
		}
	}

	// The messaging attributes (OpenTelemetry semantic conventions for RabbitMQ).
	placedPublish := findSpan(spans, orders, "publish sales.orders.order_placed")
	for _, s := range spans {
		op, _, _ := strings.Cut(s.name, " ")
		if op != "create" && op != "publish" && op != "process" {
			continue
		}
		for k, v := range map[string]string{
			"messaging.system": "rabbitmq", "messaging.operation": op, "messaging.destination.name": "sagittarius-a",
			"messaging.message.conversation_id": requestID,
		} {
			if s.attrs[k] != v {
				t.Errorf("%s %q: %s = %q, want %q", s.service, s.name, k, s.attrs[k], v)
			}
		}
		if len(s.attrs["messaging.message.id"]) != 36 {
			t.Errorf("%s %q: messaging.message.id = %q, want the event's uuid", s.service, s.name, s.attrs["messaging.message.id"])
		}
		if op == "process" && s.attrs["messaging.consumer.group.name"] != s.service {
			t.Errorf("%s %q: consumer group %q, want its queue", s.service, s.name, s.attrs["messaging.consumer.group.name"])
		}
	}
	for _, svc := range []string{stock, payments} {
		if got := findSpan(spans, svc, "process sales.orders.order_placed").attrs["messaging.message.id"]; got != placedPublish.attrs["messaging.message.id"] {
			t.Errorf("%s processed message %s, the publish span sent %s", svc, got, placedPublish.attrs["messaging.message.id"])
		}
	}

	t.Run("every process serves its metrics on its own port", func(t *testing.T) { testMetricsEndpoints(t, c) })
}

// testMetricsEndpoints reads /metrics of every service on its own port
// after a saga, and checks the families operators and alerts rely on, with
// non-zero event counters; and that the gateway does not proxy them.
func testMetricsEndpoints(t *testing.T, c *Cluster) {
	scrape := func(base string) string {
		t.Helper()
		res, err := httpClient.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s/metrics: %d", base, res.StatusCode)
		}
		return string(b)
	}
	// value returns the sum of the samples of the series whose line starts
	// with prefix (name and the first labels, in Prometheus' sorted order).
	value := func(text, prefix string) float64 {
		sum := 0.0
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(l, prefix) {
				var v float64
				if _, err := fmt.Sscan(l[strings.LastIndexByte(l, ' ')+1:], &v); err == nil {
					sum += v
				}
			}
		}
		return sum
	}
	for dir, base := range c.Direct {
		onlyPublish := dir == "customers" || dir == "catalog" || dir == "identity" // they handle no event
		// Some counters follow asynchronous work (crm.notifications publishes
		// notification_sent after its SMTP delivery, which may end after the
		// saga): scrape again until the event counters are non-zero, for at
		// most 30 s, before checking.
		text := scrape(base)
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); text = scrape(base) {
			if value(text, "sagittarius_events_published_total{") > 0 &&
				(onlyPublish || value(text, `sagittarius_events_consumed_total{outcome="handled"`) > 0) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		for _, family := range []string{"sagittarius_events_published_total", "sagittarius_outbox_pending", "sagittarius_outbox_oldest_age_seconds",
			"sagittarius_dead_letter_messages", "sagittarius_broker_connected 1", "sagittarius_broker_reconnections_total",
			"sagittarius_http_requests_total", "sagittarius_http_request_duration_seconds_bucket", "go_sql_open_connections", "go_goroutines", "process_cpu_seconds_total"} {
			name, _, _ := strings.Cut(family, " ")
			found := false
			for _, l := range strings.Split(text, "\n") {
				if strings.HasPrefix(l, name) && (!strings.Contains(family, " ") || strings.HasSuffix(l, " 1")) {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("%s /metrics: no %s", dir, family)
			}
		}
		if v := value(text, "sagittarius_events_published_total{"); v == 0 && dir != "journeys" { // journeys publishes only when a journey is stuck
			t.Errorf("%s published no event", dir)
		}
		if !onlyPublish {
			if v := value(text, `sagittarius_events_consumed_total{outcome="handled"`); v == 0 {
				t.Errorf("%s handled no event", dir)
			}
		}
		if v := value(text, `sagittarius_events_consumed_total{outcome="unhandled"`); v == 0 && dir != "journeys" { // journeys handles every type
			t.Errorf("%s counted no unhandled delivery", dir)
		}
		if strings.Contains(text, `route="/v1/orders/`+"\x22") || strings.Contains(text, "route=\"/v1/orders/1") {
			t.Errorf("%s: a raw path in a route label", dir)
		}
		if res, err := httpClient.Get(c.Gateway + "/" + dir + "/metrics"); err != nil {
			t.Fatal(err)
		} else {
			res.Body.Close()
			if res.StatusCode != http.StatusNotFound {
				t.Errorf("GET gateway /%s/metrics: %d, want 404", dir, res.StatusCode)
			}
		}
	}
	orders := scrape(c.Direct["orders"])
	if v := value(orders, `sagittarius_http_requests_total{code="201",method="POST",route="/v1/orders"`); v == 0 {
		t.Errorf("orders: no POST /v1/orders counted by its route template")
	}
	gw := scrape(c.Gateway)
	if v := value(gw, `sagittarius_gateway_upstream_requests_total{code="201"`); v == 0 {
		t.Errorf("gateway: no upstream 201 counted")
	}
	if v := value(gw, `sagittarius_http_requests_total{code="201",method="POST",route="/orders/*"`); v == 0 {
		t.Errorf("gateway: no POST /orders/* counted")
	}
}
