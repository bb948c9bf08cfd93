package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/contracts/lint"
)

// TopologyOptions configure Topology.
type TopologyOptions struct {
	// API is the RabbitMQ management API base URL with credentials,
	// e.g. http://admin:pw@127.0.0.1:15672.
	API string
	// VHost is the platform's virtual host, e.g. sagittarius.
	VHost string
	// Services are the service queues that must exist, durable and bound to
	// sagittarius-a (from the AsyncAPI manifests); may be empty.
	Services []string
	// Client does the requests; default http.DefaultClient.
	Client *http.Client
}

type exchangeInfo struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	Durable    bool   `json:"durable"`
	AutoDelete bool   `json:"auto_delete"`
	Internal   bool   `json:"internal"`
}

type queueInfo struct {
	Name       string         `json:"name"`
	Durable    bool           `json:"durable"`
	AutoDelete bool           `json:"auto_delete"`
	Exclusive  bool           `json:"exclusive"`
	Arguments  map[string]any `json:"arguments"`
}

type bindingInfo struct {
	Source          string `json:"source"`
	Destination     string `json:"destination"`
	DestinationType string `json:"destination_type"`
}

// Topology checks the broker topology of the platform's vhost:
//
//	exchange       sagittarius-a exists, type fanout, durable, not auto-delete, not internal
//	queue-name     every queue is a service queue (domain-name.subdomain-name, lowercase, no
//	               "queue" affix) or one of its own retry (S.retry.<ms>) / dead-letter queues
//	binding        only service queues are bound to sagittarius-a (never a retry or
//	               dead-letter queue, never an exchange)
//	dead-letter    no queue dead-letters to sagittarius-a (retries must not be broadcast)
//	service-queue  every expected service has its durable queue, bound to sagittarius-a
func Topology(ctx context.Context, opts TopologyOptions) ([]Violation, error) {
	if opts.Client == nil {
		opts.Client = http.DefaultClient
	}
	vh := url.PathEscape(opts.VHost)
	var out []Violation
	add := func(rule, subject, format string, args ...any) {
		out = append(out, Violation{Rule: rule, Subject: subject, Detail: fmt.Sprintf(format, args...)})
	}

	var ex exchangeInfo
	found, err := get(ctx, opts, "/api/exchanges/"+vh+"/"+url.PathEscape(eventbus.Exchange), &ex)
	if err != nil {
		return nil, err
	}
	subj := "exchange " + eventbus.Exchange
	switch {
	case !found:
		add("exchange", subj, "does not exist in vhost %s", opts.VHost)
	default:
		if ex.Type != "fanout" {
			add("exchange", subj, "type %s, want fanout", ex.Type)
		}
		if !ex.Durable {
			add("exchange", subj, "not durable")
		}
		if ex.AutoDelete {
			add("exchange", subj, "auto-delete")
		}
		if ex.Internal {
			add("exchange", subj, "internal: services cannot publish to it")
		}
	}

	var queues []queueInfo
	if _, err := get(ctx, opts, "/api/queues/"+vh, &queues); err != nil {
		return nil, err
	}
	byName := map[string]queueInfo{}
	for _, q := range queues {
		byName[q.Name] = q
		subj := "queue " + q.Name
		if _, err := lint.QueueName(q.Name); err != nil {
			add("queue-name", subj, "%v", err)
		}
		if dlx, _ := q.Arguments["x-dead-letter-exchange"].(string); dlx == eventbus.Exchange {
			add("dead-letter", subj, "dead-letters to %s: every retried or dead message would be broadcast to every service", eventbus.Exchange)
		}
	}

	var bindings []bindingInfo
	if _, err := get(ctx, opts, "/api/exchanges/"+vh+"/"+url.PathEscape(eventbus.Exchange)+"/bindings/source", &bindings); err != nil {
		return nil, err
	}
	bound := map[string]bool{}
	for _, b := range bindings {
		subj := "binding " + eventbus.Exchange + " -> " + b.Destination
		if b.DestinationType != "queue" {
			add("binding", subj, "%s routes to an exchange; it must only fan out to service queues", eventbus.Exchange)
			continue
		}
		bound[b.Destination] = true
		if err := eventbus.ValidateServiceName(b.Destination); err != nil {
			add("binding", subj, "only service queues (domain-name.subdomain-name) may be bound to %s: %v", eventbus.Exchange, err)
		}
		if strings.Contains(b.Destination, ".retry.") || strings.HasSuffix(b.Destination, ".dead-letter") {
			add("binding", subj, "a retry or dead-letter queue bound to %s receives every event", eventbus.Exchange)
		}
	}
	for _, s := range opts.Services {
		subj := "queue " + s
		q, ok := byName[s]
		switch {
		case !ok:
			add("service-queue", subj, "the queue of service %s does not exist", s)
			continue
		case !q.Durable || q.AutoDelete || q.Exclusive:
			add("service-queue", subj, "must be durable, not auto-delete, not exclusive")
		}
		if !bound[s] {
			add("service-queue", subj, "not bound to %s", eventbus.Exchange)
		}
	}
	Sort(out)
	return out, nil
}

// get fetches path from the management API into v; found is false on 404.
func get(ctx context.Context, opts TopologyOptions, path string, v any) (found bool, err error) {
	u, err := url.Parse(strings.TrimRight(opts.API, "/") + path)
	if err != nil {
		return false, fmt.Errorf("conformance: management API URL: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(opts.API, "/")+path, nil)
	if err != nil {
		return false, err
	}
	if u.User != nil {
		pw, _ := u.User.Password()
		req.SetBasicAuth(u.User.Username(), pw)
		req.URL.User = nil
	}
	res, err := opts.Client.Do(req)
	if err != nil {
		return false, fmt.Errorf("conformance: management API: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusNotFound {
		return false, nil
	}
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 300))
		return false, fmt.Errorf("conformance: management API GET %s: %d %s", path, res.StatusCode, b)
	}
	return true, json.NewDecoder(res.Body).Decode(v)
}
