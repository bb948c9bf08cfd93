package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// answer is an HTTP answer, read whole.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
}

func (a answer) problem() bool {
	return strings.HasPrefix(a.Header.Get("Content-Type"), "application/problem+json")
}

func (a answer) String() string {
	b := a.Body
	if len(b) > 300 {
		b = append(b[:300:300], "…"...)
	}
	return fmt.Sprintf("%d %s", a.Status, bytes.TrimSpace(b))
}

// client talks JSON to the platform and records every 500 it receives: a
// service must answer a fault with 503 (or the gateway with 502/503/504),
// never with an internal error.
type client struct {
	http *http.Client

	mu         sync.Mutex
	serverErrs []string
}

func newClient(timeout time.Duration) *client {
	return &client{http: &http.Client{Timeout: timeout, Transport: &http.Transport{
		MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second,
	}}}
}

// do sends one request (body as JSON unless nil) and reads the answer.
func (c *client) do(ctx context.Context, method, url string, body any, header map[string]string) (answer, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Accept", "application/hal+json, application/problem+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if a.Status == http.StatusInternalServerError {
		c.mu.Lock()
		c.serverErrs = append(c.serverErrs, fmt.Sprintf("%s %s: %s", method, url, a))
		c.mu.Unlock()
	}
	return a, nil
}

// getJSON GETs url and decodes a 200 answer into v.
func (c *client) getJSON(ctx context.Context, url string, v any) error {
	a, err := c.do(ctx, http.MethodGet, url, nil, nil)
	if err != nil {
		return err
	}
	if a.Status != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, a)
	}
	return json.Unmarshal(a.Body, v)
}

// ServerErrors returns the 500 answers seen so far and forgets them.
func (c *client) takeServerErrors() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.serverErrs
	c.serverErrs = nil
	return out
}

// retryable reports answers worth trying again: the platform is (partly)
// down or catching up.
func retryable(a answer, err error) bool {
	if err != nil {
		return true
	}
	switch a.Status {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, 499:
		return true
	}
	return false
}

// backoff sleeps before the next try (growing to 2 s) or returns false when
// ctx is done.
func backoff(ctx context.Context, try int) bool {
	d := time.Duration(min(50*(1<<min(try, 6)), 2000)) * time.Millisecond
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
