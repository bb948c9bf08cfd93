package problem_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sagittarius-a/sagittarius/internal/problem"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name       string
		p          *problem.Problem
		wantStatus int
		wantType   string
		wantTitle  string
	}{
		{"not found", problem.NotFound("customer 1 does not exist"), 404, problem.TypeBlank, "Not Found"},
		{"conflict", problem.Conflict("already retired"), 409, problem.TypeConflict, "Conflict"},
		{"stale", problem.PreconditionFailed("stale"), 412, problem.TypeStale, "Precondition Failed"},
		{"validation", problem.Validation(problem.FieldError{Field: "/email", Message: "required"}), 422, problem.TypeValidation, "Validation failed"},
		{"405", problem.MethodNotAllowed("PUT"), 405, problem.TypeBlank, "Method Not Allowed"},
		{"500", problem.Internal(), 500, problem.TypeBlank, "Internal Server Error"},
		{"empty fields filled", &problem.Problem{Status: 400}, 400, problem.TypeBlank, "Bad Request"},
		{"invalid status becomes 500", &problem.Problem{Status: 200, Title: "x"}, 500, problem.TypeBlank, "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			rec.Header().Set("ETag", `"1"`)
			req := httptest.NewRequest(http.MethodGet, "/v1/customers/1?x=y", nil)
			problem.Write(rec, req, tt.p)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if ct := rec.Header().Get("Content-Type"); ct != problem.ContentType {
				t.Fatalf("content type = %q", ct)
			}
			if rec.Header().Get("ETag") != "" {
				t.Fatal("ETag kept on an error response")
			}
			var got problem.Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.wantStatus || got.Type != tt.wantType || got.Title != tt.wantTitle || got.Instance != "/v1/customers/1" {
				t.Fatalf("body = %+v", got)
			}
		})
	}
}

func TestFields(t *testing.T) {
	var f problem.Fields
	if f.Err() != nil {
		t.Fatal("empty Fields gave an error")
	}
	if f.Check(true, "/a", "fine") != true || len(f) != 0 {
		t.Fatal("Check(true) recorded an error")
	}
	f.Check(false, "/email", "must be an email address")
	err := f.Err()
	p := problem.From(fmt.Errorf("wrapped: %w", err))
	if p == nil || p.Status != 422 || len(p.Errors) != 1 || p.Errors[0].Field != "/email" {
		t.Fatalf("From(Err()) = %+v", p)
	}
	if problem.From(fmt.Errorf("plain")) != nil {
		t.Fatal("From found a problem in a plain error")
	}
	if got := p.Error(); got != "422 Validation failed: the request contains invalid fields; /email: must be an email address" {
		t.Fatalf("Error() = %q", got)
	}
}

func TestWriteInstanceBehindTheGateway(t *testing.T) {
	tests := []struct{ prefix, want string }{
		{"", "/v1/orders/1"},
		{"/orders", "/orders/v1/orders/1"},
		{"/Orders", "/v1/orders/1"},
		{"/a/b", "/v1/orders/1"},
		{"orders", "/v1/orders/1"},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(http.MethodGet, "/v1/orders/1", nil)
		if tt.prefix != "" {
			req.Header.Set("X-Forwarded-Prefix", tt.prefix)
		}
		rec := httptest.NewRecorder()
		problem.Write(rec, req, problem.NotFound("x"))
		var got problem.Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got.Instance != tt.want {
			t.Errorf("prefix %q: instance %q, want %q", tt.prefix, got.Instance, tt.want)
		}
	}
}
