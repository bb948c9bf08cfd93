package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Resource is a HAL document as a client sees it: its JSON members and its links.
type Resource struct {
	// Href is the URL the resource was read from (or its Location when created).
	Href string
	// ETag is the response's ETag, if any.
	ETag string
	// Body holds the decoded JSON members, _links and _embedded included.
	Body map[string]any
}

// Link returns the href of the relation rel, or an error naming the missing
// relation. A templated link is returned with its template variables
// removed, so "…/orders{?status}" becomes "…/orders".
func (r Resource) Link(rel string) (string, error) {
	links, _ := r.Body["_links"].(map[string]any)
	switch l := links[rel].(type) {
	case map[string]any:
		if h, ok := l["href"].(string); ok && h != "" {
			return stripTemplate(h), nil
		}
	case []any:
		if len(l) > 0 {
			if m, ok := l[0].(map[string]any); ok {
				if h, ok := m["href"].(string); ok && h != "" {
					return stripTemplate(h), nil
				}
			}
		}
	}
	return "", fmt.Errorf("%s has no %q link", r.Href, rel)
}

// HasLink reports whether the resource links rel.
func (r Resource) HasLink(rel string) bool {
	_, err := r.Link(rel)
	return err == nil
}

var templateVar = regexp.MustCompile(`\{[^}]*\}`)

func stripTemplate(h string) string { return templateVar.ReplaceAllString(h, "") }

// String returns the string member name, or "".
func (r Resource) String(name string) string {
	s, _ := r.Body[name].(string)
	return s
}

// Problem is an RFC 9457 error answer of the API.
type Problem struct {
	Status int
	Title  string
	Detail string
	Errors []struct{ Field, Message string }
}

func (p *Problem) Error() string {
	s := fmt.Sprintf("%d %s", p.Status, p.Title)
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	for _, e := range p.Errors {
		s += fmt.Sprintf("; %s %s", e.Field, e.Message)
	}
	return s
}

// Client talks HAL+JSON to the gateway. It knows relation names, never paths.
// It is safe for concurrent use.
type Client struct {
	HTTP *http.Client
}

// Get reads the resource at href.
func (c *Client) Get(ctx context.Context, href string) (Resource, error) {
	return c.do(ctx, http.MethodGet, href, nil, nil)
}

// Post sends body as JSON to href and returns the created resource (read
// from the response body; Href is the Location header).
func (c *Client) Post(ctx context.Context, href string, body any, header map[string]string) (Resource, error) {
	return c.do(ctx, http.MethodPost, href, body, header)
}

// Patch sends body as JSON to href, with If-Match when etag is not empty.
func (c *Client) Patch(ctx context.Context, href string, body any, etag string) (Resource, error) {
	var h map[string]string
	if etag != "" {
		h = map[string]string{"If-Match": etag}
	}
	return c.do(ctx, http.MethodPatch, href, body, h)
}

func (c *Client) do(ctx context.Context, method, href string, body any, header map[string]string) (Resource, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return Resource{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, href, rd)
	if err != nil {
		return Resource{}, err
	}
	req.Header.Set("Accept", "application/hal+json, application/problem+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(req)
	if err != nil {
		return Resource{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		return Resource{}, err
	}
	if res.StatusCode >= 300 {
		p := &Problem{Status: res.StatusCode, Title: http.StatusText(res.StatusCode)}
		if strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json") {
			_ = json.Unmarshal(raw, p)
		}
		return Resource{}, fmt.Errorf("%s %s: %w", method, href, p)
	}
	r := Resource{Href: href, ETag: res.Header.Get("ETag"), Body: map[string]any{}}
	if loc := res.Header.Get("Location"); loc != "" {
		r.Href = loc
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			return Resource{}, fmt.Errorf("%s %s: answer is not JSON: %w", method, href, err)
		}
	}
	if self, err := r.Link("self"); err == nil && res.Header.Get("Location") == "" {
		r.Href = self
	}
	return r, nil
}

// StatusOf returns the HTTP status of a Problem in err's chain, or 0.
func StatusOf(err error) int {
	var p *Problem
	if errors.As(err, &p) {
		return p.Status
	}
	return 0
}

// Retry calls fn every interval until it succeeds, retryable(err) is false,
// or ctx is done; it returns fn's last error.
func Retry(ctx context.Context, interval time.Duration, retryable func(error) bool, fn func() error) error {
	for {
		err := fn()
		if err == nil || !retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up: %v)", err, ctx.Err())
		case <-time.After(interval):
		}
	}
}
