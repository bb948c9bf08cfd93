package httpkit

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
	"github.com/sagittarius-a/sagittarius/internal/problem"
)

// StatusClientClosedRequest is nginx's 499 "Client Closed Request": the
// client went away before the answer was ready. Nobody reads the answer; the
// status is for the request log.
const StatusClientClosedRequest = 499

// ErrorProblem maps an error that a service's own error mapping does not know
// (every error that is not one of its domain's) to the problem its client
// receives. It is the one place where infrastructure errors become HTTP
// statuses, for every service:
//
//   - a *problem.Problem in err's chain (a decoder's 400, 413, 415, 422): itself;
//   - the request's context cancelled (the client went away): 499;
//   - the database unreachable or its connection broken (mysqldb.IsUnavailable): 503;
//   - a deadline exceeded (a dependency too slow for the request's bound): 503;
//   - anything else: logged at Error on logger with the method, path, request
//     id and error, and answered with a bare 500 that reveals nothing.
//
// logger may be nil (slog.Default). A service's mapping looks like
//
//	switch {
//	case errors.Is(err, order.ErrNotFound):
//		return problem.NotFound("no order with this id")
//	…
//	default:
//		return httpkit.ErrorProblem(a.logger, r, err)
//	}
func ErrorProblem(logger *slog.Logger, r *http.Request, err error) *problem.Problem {
	if p := problem.From(err); p != nil {
		return p
	}
	switch {
	case errors.Is(err, context.Canceled):
		p := problem.New(StatusClientClosedRequest, "the client closed the request")
		p.Title = "Client Closed Request"
		return p
	case mysqldb.IsUnavailable(err):
		// The database is down or restarting: the request may succeed later.
		return problem.New(http.StatusServiceUnavailable, "the database is unavailable; retry shortly")
	case errors.Is(err, context.DeadlineExceeded):
		return problem.New(http.StatusServiceUnavailable, "the request timed out waiting for a dependency; retry shortly")
	}
	if logger == nil {
		logger = slog.Default()
	}
	logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path,
		"request_id", RequestIDFrom(r.Context()), "error", err)
	return problem.Internal()
}
