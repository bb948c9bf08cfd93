package httpkit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/problem"
)

// TestErrorProblem: every infrastructure error gets its one status, and only
// the unknown ones are logged.
func TestErrorProblem(t *testing.T) {
	for _, tt := range []struct {
		name   string
		err    error
		status int
		logged bool
	}{
		{"a problem passes through", fmt.Errorf("decode: %w", problem.BadRequest("malformed JSON")), 400, false},
		{"cancelled client", fmt.Errorf("orders: %w", context.Canceled), 499, false},
		{"database connection broken", fmt.Errorf("begin: %w", mysql.ErrInvalidConn), 503, false},
		{"database refused", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, 503, false},
		{"too many connections", &mysql.MySQLError{Number: 1040, Message: "Too many connections"}, 503, false},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), 503, false},
		{"a statement error", &mysql.MySQLError{Number: 1064, Message: "syntax"}, 500, true},
		{"anything else", errors.New("boom"), 500, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, nil))
			r := httptest.NewRequest("GET", "/v1/orders/1", nil)
			p := httpkit.ErrorProblem(logger, r, tt.err)
			if p.Status != tt.status {
				t.Errorf("status %d, want %d (%v)", p.Status, tt.status, p)
			}
			if logged := strings.Contains(logs.String(), "request failed"); logged != tt.logged {
				t.Errorf("logged %v, want %v: %s", logged, tt.logged, logs.String())
			}
			if tt.status == 500 && (strings.Contains(p.Detail, "boom") || strings.Contains(p.Detail, "syntax")) {
				t.Errorf("500 reveals the cause: %q", p.Detail)
			}
			w := httptest.NewRecorder()
			problem.Write(w, r, p)
			if w.Code != tt.status || w.Header().Get("Content-Type") != problem.ContentType {
				t.Errorf("written %d %s", w.Code, w.Header().Get("Content-Type"))
			}
		})
	}
}
