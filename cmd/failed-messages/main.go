// Command failed-messages is the operator's tool for a service's failed
// messages (its dead letters, kept by internal/failedmsg). It uses the
// public API through the gateway as any operator's client would: it follows
// HAL links from the gateway root (root -> the service's root -> its
// failed-messages link -> groups, retries, actions), and knows relation
// names, never URL paths.
//
// Usage (scripts/failed-messages builds and runs it):
//
//	failed-messages list    SERVICE [--group FP] [--type T] [--status S] [--from T] [--to T] [--page N] [--size N]
//	failed-messages groups  SERVICE [--status S] [--type T]
//	failed-messages show    SERVICE ID
//	failed-messages retry   SERVICE (--group FP | ID...) [--batch-size N] [--rate R] [--wait]
//	failed-messages retries SERVICE [RETRY-ID]
//	failed-messages archive SERVICE ID...
//	failed-messages unarchive SERVICE ID...
//	failed-messages actions SERVICE
//
// SERVICE is the service's gateway prefix (payments, orders …). The gateway
// is --gateway, or $SAGITTARIUS_GATEWAY, or http://127.0.0.1:8080. retry
// --wait polls the operation and prints its progress until it completes.
// Every request carries an X-Request-Id, recorded in the service's audit log
// with the action. It exits 1 on any error (problem details printed).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "failed-messages:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  failed-messages list      SERVICE [--group FP] [--type T] [--status S] [--from T] [--to T] [--page N] [--size N]
  failed-messages groups    SERVICE [--status S] [--type T]
  failed-messages show      SERVICE ID
  failed-messages retry     SERVICE (--group FP | ID...) [--batch-size N] [--rate R] [--wait]
  failed-messages retries   SERVICE [RETRY-ID]
  failed-messages archive   SERVICE ID...
  failed-messages unarchive SERVICE ID...
  failed-messages actions   SERVICE
options anywhere: --gateway URL (default $SAGITTARIUS_GATEWAY or http://127.0.0.1:8080), --poll 500ms`

// options are the parsed command line: positional arguments and --name value
// (or --name=value) options; --wait is a switch.
type options struct {
	args  []string
	flags map[string]string
}

var valueFlags = map[string]bool{"group": true, "type": true, "status": true, "from": true, "to": true, "page": true, "size": true,
	"batch-size": true, "rate": true, "gateway": true, "poll": true}

func parseArgs(in []string) (options, error) {
	o := options{flags: map[string]string{}}
	for i := 0; i < len(in); i++ {
		a := in[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			o.args = append(o.args, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case name == "wait" || name == "h" || name == "help":
			o.flags[name] = "true"
		case !valueFlags[name]:
			return o, fmt.Errorf("unknown option %s\n%s", a, usage)
		case hasVal:
			o.flags[name] = val
		case i+1 < len(in):
			i++
			o.flags[name] = in[i]
		default:
			return o, fmt.Errorf("option %s needs a value", a)
		}
	}
	return o, nil
}

func run(ctx context.Context, argv []string, getenv func(string) string, stdout io.Writer) error {
	o, err := parseArgs(argv)
	if err != nil {
		return err
	}
	if o.flags["help"] != "" || o.flags["h"] != "" || len(o.args) < 2 {
		fmt.Fprintln(stdout, usage)
		if len(o.args) < 2 && o.flags["help"] == "" && o.flags["h"] == "" {
			return errors.New("a command and a service are required")
		}
		return nil
	}
	gw := o.flags["gateway"]
	if gw == "" {
		gw = getenv("SAGITTARIUS_GATEWAY")
	}
	if gw == "" {
		gw = "http://127.0.0.1:8080"
	}
	poll := 500 * time.Millisecond
	if v := o.flags["poll"]; v != "" {
		if poll, err = time.ParseDuration(v); err != nil || poll <= 0 {
			return fmt.Errorf("--poll %q: want a duration such as 500ms", v)
		}
	}
	c := &client{http: &http.Client{Timeout: 30 * time.Second}, token: getenv("SAGITTARIUS_TOKEN")}
	cmd, svc, rest := o.args[0], o.args[1], o.args[2:]
	messages, err := c.discover(ctx, strings.TrimRight(gw, "/"), svc)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	defer w.Flush()
	switch cmd {
	case "list":
		return c.list(ctx, w, messages, o.flags)
	case "groups":
		return c.groups(ctx, w, messages, o.flags)
	case "show":
		if len(rest) != 1 {
			return errors.New("show needs one failed message id")
		}
		return c.show(ctx, stdout, messages, rest[0])
	case "retry":
		return c.retry(ctx, w, messages, rest, o.flags, poll)
	case "retries":
		return c.retries(ctx, w, messages, rest)
	case "archive", "unarchive":
		if len(rest) == 0 {
			return fmt.Errorf("%s needs failed message ids", cmd)
		}
		status := "archived"
		if cmd == "unarchive" {
			status = "unresolved"
		}
		return c.setStatus(ctx, w, messages, rest, status)
	case "actions":
		return c.actions(ctx, w, messages)
	default:
		return fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
}

// doc is a HAL document as a client sees it.
type doc struct {
	href string
	body map[string]any
}

var templateVar = regexp.MustCompile(`\{[^}]*\}`)

// link returns the href of rel, template variables removed.
func (d doc) link(rel string) (string, error) {
	links, _ := d.body["_links"].(map[string]any)
	switch l := links[rel].(type) {
	case map[string]any:
		if h, ok := l["href"].(string); ok && h != "" {
			return templateVar.ReplaceAllString(h, ""), nil
		}
	case []any:
		if len(l) > 0 {
			if m, ok := l[0].(map[string]any); ok {
				if h, ok := m["href"].(string); ok {
					return templateVar.ReplaceAllString(h, ""), nil
				}
			}
		}
	}
	return "", fmt.Errorf("%s has no %q link", d.href, rel)
}

func (d doc) embedded(rel string) []map[string]any {
	emb, _ := d.body["_embedded"].(map[string]any)
	items, _ := emb[rel].([]any)
	out := make([]map[string]any, 0, len(items))
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// client calls the API as the operator whose access token is token
// (SAGITTARIUS_TOKEN; scripts/failed-messages obtains one with scripts/token
// operator); the failed-messages routes need the role operator.
type client struct {
	http  *http.Client
	token string
}

// problemError is an RFC 9457 answer.
type problemError struct {
	Status int    `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

func (p *problemError) Error() string {
	s := fmt.Sprintf("%d %s", p.Status, p.Title)
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	for _, e := range p.Errors {
		s += fmt.Sprintf("; %s: %s", e.Field, e.Message)
	}
	return s
}

// do sends a request (body as JSON unless nil) and decodes a 2xx HAL answer.
func (c *client) do(ctx context.Context, method, href string, body any) (doc, http.Header, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return doc{}, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, href, rd)
	if err != nil {
		return doc{}, nil, err
	}
	req.Header.Set("Accept", "application/hal+json, application/problem+json")
	req.Header.Set("X-Request-Id", "failed-messages-"+uuid.NewString())
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return doc{}, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return doc{}, nil, err
	}
	if resp.StatusCode/100 != 2 {
		p := &problemError{}
		if json.Unmarshal(b, p) != nil || p.Status == 0 {
			return doc{}, nil, fmt.Errorf("%s %s: %s: %.200s", method, href, resp.Status, b)
		}
		return doc{}, nil, fmt.Errorf("%s %s: %w", method, href, p)
	}
	d := doc{href: href, body: map[string]any{}}
	if err := json.Unmarshal(b, &d.body); err != nil {
		return doc{}, nil, fmt.Errorf("%s %s: %w", method, href, err)
	}
	return d, resp.Header, nil
}

func (c *client) get(ctx context.Context, href string) (doc, error) {
	d, _, err := c.do(ctx, http.MethodGet, href, nil)
	return d, err
}

// discover follows gateway root -> service root -> failed-messages.
func (c *client) discover(ctx context.Context, gateway, service string) (doc, error) {
	root, err := c.get(ctx, gateway+"/")
	if err != nil {
		return doc{}, err
	}
	svcHref, err := root.link(service)
	if err != nil {
		return doc{}, fmt.Errorf("the gateway has no service %q: %w", service, err)
	}
	svcRoot, err := c.get(ctx, svcHref)
	if err != nil {
		return doc{}, err
	}
	href, err := svcRoot.link("failed-messages")
	if err != nil {
		return doc{}, err
	}
	return c.get(ctx, href)
}

func withQuery(href string, flags map[string]string, names ...string) string {
	q := url.Values{}
	for _, n := range names {
		if v := flags[n]; v != "" {
			q.Set(n, v)
		}
	}
	if len(q) == 0 {
		return href
	}
	return href + "?" + q.Encode()
}

func str(m map[string]any, k string) string {
	switch v := m[k].(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

func clip(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func (c *client) list(ctx context.Context, w *tabwriter.Writer, messages doc, flags map[string]string) error {
	d, err := c.get(ctx, withQuery(messages.href, flags, "group", "type", "status", "from", "to", "page", "size"))
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "ID\tSTATUS\tTYPE\tATTEMPTS\tLAST FAILURE\tGROUP\tREASON")
	for _, m := range d.embedded("failed-messages") {
		reason := str(m, "reason")
		if mal := str(m, "malformed"); mal != "" {
			reason = "MALFORMED: " + mal
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", str(m, "id"), str(m, "status"), str(m, "type"), str(m, "attempts"),
			str(m, "last_failed_at"), str(m, "fingerprint"), clip(reason, 80))
	}
	fmt.Fprintf(w, "page %s of %s messages (size %s)\n", str(d.body, "page"), str(d.body, "total"), str(d.body, "size"))
	return nil
}

func (c *client) groups(ctx context.Context, w *tabwriter.Writer, messages doc, flags map[string]string) error {
	href, err := messages.link("failed-message-groups")
	if err != nil {
		return err
	}
	d, err := c.get(ctx, withQuery(href, flags, "status", "type", "page", "size"))
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "GROUP\tCOUNT\tUNRESOLVED\tTYPE\tLAST FAILURE\tREASON")
	for _, g := range d.embedded("failed-message-groups") {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", str(g, "fingerprint"), str(g, "count"), str(g, "unresolved"), str(g, "type"),
			str(g, "last_failed_at"), clip(str(g, "reason"), 80))
	}
	fmt.Fprintf(w, "%s groups\n", str(d.body, "total"))
	return nil
}

func (c *client) item(messages doc, id string) (string, error) {
	if _, err := uuid.Parse(id); err != nil {
		return "", fmt.Errorf("%q is not a failed message id (a UUID)", id)
	}
	href, err := messages.link("failed-message")
	if err != nil {
		return "", err
	}
	return href + "/" + url.PathEscape(id), nil
}

func (c *client) show(ctx context.Context, stdout io.Writer, messages doc, id string) error {
	href, err := c.item(messages, id)
	if err != nil {
		return err
	}
	d, err := c.get(ctx, href)
	if err != nil {
		return err
	}
	b, _ := json.MarshalIndent(d.body, "", "  ")
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}

func (c *client) setStatus(ctx context.Context, w *tabwriter.Writer, messages doc, ids []string, status string) error {
	for _, id := range ids {
		href, err := c.item(messages, id)
		if err != nil {
			return err
		}
		d, _, err := c.do(ctx, http.MethodPatch, href, map[string]string{"status": status})
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", id, str(d.body, "status"), str(d.body, "type"))
	}
	return nil
}

func (c *client) retry(ctx context.Context, w *tabwriter.Writer, messages doc, ids []string, flags map[string]string, poll time.Duration) error {
	href, err := messages.link("failed-message-retries")
	if err != nil {
		return err
	}
	body := map[string]any{}
	switch {
	case flags["group"] != "" && len(ids) > 0:
		return errors.New("retry: give --group or ids, not both")
	case flags["group"] != "":
		body["group"] = flags["group"]
	case len(ids) > 0:
		body["ids"] = ids
	default:
		return errors.New("retry: give --group FINGERPRINT or failed message ids")
	}
	if v := flags["batch-size"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("--batch-size %q: want an integer", v)
		}
		body["batch_size"] = n
	}
	if v := flags["rate"]; v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("--rate %q: want a number of messages per second", v)
		}
		body["rate_per_second"] = r
	}
	d, h, err := c.do(ctx, http.MethodPost, href, body)
	if err != nil {
		return err
	}
	loc := h.Get("Location")
	fmt.Fprintf(w, "retry operation %s: %s messages, %s\n", str(d.body, "id"), str(d.body, "total"), loc)
	if flags["wait"] == "" {
		return nil
	}
	w.Flush()
	last := ""
	for {
		op, err := c.get(ctx, loc)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s: %s/%s done, %s republished, %s failed", str(op.body, "status"), str(op.body, "done"),
			str(op.body, "total"), str(op.body, "succeeded"), str(op.body, "failed"))
		if line != last {
			fmt.Fprintln(w, line)
			w.Flush()
			last = line
		}
		if str(op.body, "status") == "completed" {
			for _, o := range outcomes(op) {
				if o["outcome"] != "republished" {
					fmt.Fprintf(w, "  %s\t%s\t%s\n", str(o, "failed_message_id"), str(o, "outcome"), str(o, "detail"))
				}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

func outcomes(d doc) []map[string]any {
	items, _ := d.body["outcomes"].([]any)
	var out []map[string]any
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func (c *client) retries(ctx context.Context, w *tabwriter.Writer, messages doc, rest []string) error {
	href, err := messages.link("failed-message-retries")
	if err != nil {
		return err
	}
	if len(rest) == 1 {
		op, err := c.get(ctx, href+"/"+url.PathEscape(rest[0]))
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s: %s/%s done, %s republished, %s failed, %s restarts\n", str(op.body, "status"), str(op.body, "done"),
			str(op.body, "total"), str(op.body, "succeeded"), str(op.body, "failed"), str(op.body, "restarts"))
		for _, o := range outcomes(op) {
			fmt.Fprintf(w, "  %s\t%s\t%s\n", str(o, "failed_message_id"), str(o, "outcome"), str(o, "detail"))
		}
		return nil
	}
	d, err := c.get(ctx, href)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "RETRY\tSTATUS\tDONE\tTOTAL\tREPUBLISHED\tFAILED\tCREATED\tBY")
	for _, op := range d.embedded("failed-message-retries") {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", str(op, "id"), str(op, "status"), str(op, "done"), str(op, "total"),
			str(op, "succeeded"), str(op, "failed"), str(op, "created_at"), str(op, "actor"))
	}
	return nil
}

func (c *client) actions(ctx context.Context, w *tabwriter.Writer, messages doc) error {
	href, err := messages.link("failed-message-actions")
	if err != nil {
		return err
	}
	d, err := c.get(ctx, href)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "AT\tACTION\tCOUNT\tTARGET\tACTOR\tREQUEST")
	for _, a := range d.embedded("failed-message-actions") {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", str(a, "at"), str(a, "action"), str(a, "count"), str(a, "target"), str(a, "actor"), str(a, "request_id"))
	}
	return nil
}
