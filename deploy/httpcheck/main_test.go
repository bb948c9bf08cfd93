package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(200 * time.Millisecond)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)

	if err := check(srv.URL+"/health", time.Second); err != nil {
		t.Errorf("200: %v, want nil", err)
	}
	status = http.StatusServiceUnavailable
	if err := check(srv.URL+"/health", time.Second); err == nil {
		t.Error("503: nil error, want one")
	}
	status = http.StatusOK
	if err := check(srv.URL+"/slow", 50*time.Millisecond); err == nil {
		t.Error("answer after the timeout: nil error, want one")
	}
	if err := check("http://127.0.0.1:1/health", time.Second); err == nil {
		t.Error("nothing listening: nil error, want one")
	}
}
