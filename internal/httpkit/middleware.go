package httpkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/google/uuid"

	"github.com/sagittarius-a/sagittarius/internal/problem"
)

// Header names the middleware reads and writes.
const (
	HeaderRequestID   = "X-Request-Id"
	HeaderTraceparent = "Traceparent"
)

// DefaultMaxBodyBytes is the request body limit when Options.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 1 << 20

// Options configures Stack.
type Options struct {
	// Logger receives one line per request and every recovered panic.
	// nil means slog.Default().
	Logger *slog.Logger
	// MaxBodyBytes limits request bodies (0 means DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// WithRequestID, if set, is called with the request id so that it
	// travels further, e.g. eventbus.WithCorrelationID: events published
	// while handling the request then carry it as correlation id.
	WithRequestID func(ctx context.Context, id string) context.Context
	// WithTraceparent, if set, is called with the request's W3C traceparent.
	WithTraceparent func(ctx context.Context, traceparent string) context.Context
}

// Stack wraps h in the standard middleware, outermost first: request id,
// logging, panic recovery, header size limit, body size limit.
func Stack(h http.Handler, o Options) http.Handler {
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	limit := o.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	h = LimitBody(limit)(h)
	h = LimitHeaders(MaxHeaderBytes)(h)
	h = Recover(logger)(h)
	h = Log(logger)(h)
	h = RequestID(o.WithRequestID, o.WithTraceparent)(h)
	return h
}

type ctxKey int

const (
	keyRequestID ctxKey = iota
	keyTraceparent
)

// RequestIDFrom returns the request id the RequestID middleware stored in
// ctx, or "".
func RequestIDFrom(ctx context.Context) string {
	s, _ := ctx.Value(keyRequestID).(string)
	return s
}

// TraceparentFrom returns the W3C traceparent stored in ctx, or "".
func TraceparentFrom(ctx context.Context) string {
	s, _ := ctx.Value(keyTraceparent).(string)
	return s
}

// ValidRequestID reports whether id is acceptable as X-Request-Id: 1 to 128
// characters from [A-Za-z0-9._:@/+=-]. (A loop, not a regular expression:
// it runs on every request.)
func ValidRequestID(id string) bool {
	if len(id) < 1 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.' || c == '_' || c == ':' || c == '@' || c == '/' || c == '+' || c == '=' || c == '-':
		default:
			return false
		}
	}
	return true
}

// ValidTraceparent reports whether tp is a version-00 W3C traceparent
// (00-<32 hex>-<16 hex>-<2 hex>, lower case) with non-zero trace and parent
// ids.
func ValidTraceparent(tp string) bool {
	if len(tp) != 55 || tp[0] != '0' || tp[1] != '0' || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' {
		return false
	}
	for _, span := range [3][2]int{{3, 35}, {36, 52}, {53, 55}} {
		for i := span[0]; i < span[1]; i++ {
			if c := tp[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return tp[3:35] != "00000000000000000000000000000000" && tp[36:52] != "0000000000000000"
}

// NewRequestID returns a fresh random request id (a UUID).
func NewRequestID() string { return uuid.NewString() }

// NewTraceparent returns a fresh sampled W3C traceparent.
func NewTraceparent() string {
	var b [24]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return traceparentFrom(b)
}

func traceparentFrom(b [24]byte) string {
	var out [55]byte
	copy(out[:], "00-")
	hex.Encode(out[3:35], b[:16])
	out[35] = '-'
	hex.Encode(out[36:52], b[16:])
	copy(out[52:], "-01")
	return string(out[:])
}

// newIDs returns a fresh request id (a UUID, version 4) and traceparent
// from one read of the random source.
func newIDs() (id, traceparent string) {
	var b [40]byte
	_, _ = rand.Read(b[:])
	u, _ := uuid.FromBytes(b[:16])
	u[6] = (u[6] & 0x0f) | 0x40 // version 4
	u[8] = (u[8] & 0x3f) | 0x80 // RFC 4122 variant
	return u.String(), traceparentFrom([24]byte(b[16:]))
}

// RequestID takes X-Request-Id and traceparent from the request, or makes
// new ones when they are absent or invalid, stores them in the context
// (RequestIDFrom, TraceparentFrom, and the optional hooks), puts them back on
// the request headers for proxies, and echoes X-Request-Id in the response.
func RequestID(withID, withTrace func(context.Context, string) context.Context) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get(HeaderRequestID)
			tp := r.Header.Get(HeaderTraceparent)
			switch okID, okTP := ValidRequestID(id), ValidTraceparent(tp); {
			case !okID && !okTP:
				id, tp = newIDs()
			case !okID:
				id = NewRequestID()
			case !okTP:
				tp = NewTraceparent()
			}
			r.Header.Set(HeaderRequestID, id)
			r.Header.Set(HeaderTraceparent, tp)
			w.Header().Set(HeaderRequestID, id)
			ctx := context.WithValue(r.Context(), keyRequestID, id)
			ctx = context.WithValue(ctx, keyTraceparent, tp)
			if withID != nil {
				ctx = withID(ctx, id)
			}
			if withTrace != nil {
				ctx = withTrace(ctx, tp)
			}
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// statusWriter records the status and size written through it. Unwrap lets
// http.ResponseController reach Flush and friends on the underlying writer.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Flush implements http.Flusher when the underlying writer does.
func (s *statusWriter) Flush() {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Log logs one line per request at Info (Warn for 5xx): method, path,
// status, bytes, duration and request id.
func Log(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w}
			defer func() {
				status := sw.status
				if status == 0 {
					status = http.StatusOK
				}
				level := slog.LevelInfo
				if status >= 500 {
					level = slog.LevelWarn
				}
				logger.LogAttrs(r.Context(), level, "http request",
					slog.String("method", r.Method), slog.String("path", r.URL.Path),
					slog.Int("status", status), slog.Int64("bytes", sw.bytes),
					slog.Duration("duration", time.Since(start)),
					slog.String("request_id", RequestIDFrom(r.Context())))
			}()
			next.ServeHTTP(sw, r)
		})
	}
}

// Recover turns a panic in next into a 500 problem (when nothing was written
// yet) and an Error log line with the stack. http.ErrAbortHandler is re-panicked
// as net/http expects.
func Recover(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sw := &statusWriter{ResponseWriter: w}
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(v)
				}
				logger.ErrorContext(r.Context(), "panic in handler", "panic", v,
					"path", r.URL.Path, "request_id", RequestIDFrom(r.Context()), "stack", string(debug.Stack()))
				if sw.status == 0 {
					problem.Write(sw, r, problem.Internal())
				}
			}()
			next.ServeHTTP(sw, r)
		})
	}
}

// LimitHeaders answers 431 problem+json to a request whose request line and
// headers (as sent: "Name: value\r\n" each) exceed n bytes.
func LimitHeaders(n int) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			size := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
			for k, vs := range r.Header {
				for _, v := range vs {
					size += len(k) + len(v) + 4
				}
			}
			if size > n {
				problem.Write(w, r, problem.Newf(http.StatusRequestHeaderFieldsTooLarge,
					"the request line and headers exceed %d bytes", n))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// LimitBody caps request bodies at n bytes (http.MaxBytesReader). Reading
// past the limit fails with *http.MaxBytesError, which DecodeJSON maps to 413.
func LimitBody(n int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > n {
				problem.Write(w, r, problem.Newf(http.StatusRequestEntityTooLarge,
					"request body exceeds %d bytes", n))
				return
			}
			if r.Body != nil {
				r.Body = http.MaxBytesReader(w, r.Body, n)
			}
			next.ServeHTTP(w, r)
		})
	}
}
