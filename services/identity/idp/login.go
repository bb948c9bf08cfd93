package idp

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/sagittarius-a/sagittarius/internal/problem"
	"github.com/sagittarius-a/sagittarius/services/identity/account"
)

// The sign-in page. It is HTML because a person reads it in a browser; it is
// served at /login, beside the protocol endpoints and outside the REST API.
var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in to Sagittarius</title>
<style>
body{font-family:system-ui,sans-serif;max-width:22rem;margin:4rem auto;padding:0 1rem;color:#222}
label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.5rem;box-sizing:border-box}
button{margin-top:1.2rem;padding:.6rem 1.2rem}.error{color:#a00}
</style>
</head>
<body>
<h1>Sign in</h1>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
{{if .ID}}<form method="post" action="{{.Action}}">
<input type="hidden" name="authRequestID" value="{{.ID}}">
<label for="email">E-mail</label>
<input id="email" name="email" type="email" autocomplete="username" value="{{.Email}}" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>{{end}}
</body>
</html>
`))

type loginData struct {
	ID, Action, Email, Error string
}

// Sign-in throttling: after maxFailures wrong passwords for one e-mail
// within failureWindow, further attempts for it get 429 until the window
// has passed. Per instance, bounded in memory.
const (
	maxFailures   = 10
	failureWindow = 15 * time.Minute
	maxTracked    = 100000
)

type login struct {
	accounts  Accounts
	store     Store
	cfg       Config
	callback  func(context.Context, string) string
	intercept *op.IssuerInterceptor
	now       func() time.Time

	mu       sync.Mutex
	failures map[string]*failures
}

type failures struct {
	count int
	since time.Time
}

func newLogin(accounts Accounts, store Store, cfg Config, callback func(context.Context, string) string, intercept *op.IssuerInterceptor) *login {
	return &login{accounts: accounts, store: store, cfg: cfg, callback: callback, intercept: intercept, now: time.Now,
		failures: map[string]*failures{}}
}

func (l *login) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// No form-action: browsers apply it to the redirects that follow the
	// submission too, and the last one goes to the client's redirect URI,
	// another origin (TestSignInWithARealBrowser failed with form-action 'self').
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		l.show(w, r)
	case http.MethodPost:
		l.intercept.HandlerFunc(l.submit)(w, r)
	default:
		h.Set("Allow", "GET, HEAD, POST")
		l.render(w, r, http.StatusMethodNotAllowed, loginData{Error: "Method not allowed."})
	}
}

// render writes the page with status. A refusal (status >= 400) asked for
// with Accept: application/json or application/problem+json (a program
// driving the form) is written as a problem+json document instead.
func (l *login) render(w http.ResponseWriter, r *http.Request, status int, d loginData) {
	if status >= 400 && strings.Contains(r.Header.Get("Accept"), "json") {
		problem.Write(w, r, problem.New(status, d.Error))
		return
	}
	d.Action = l.cfg.LoginURL
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = loginPage.Execute(w, d)
}

// pending returns the auth request id of r when it names a request still
// waiting for its sign-in.
func (l *login) pending(r *http.Request, id string) (AuthRequest, bool) {
	if id == "" || len(id) > 64 {
		return AuthRequest{}, false
	}
	ar, err := l.store.AuthRequest(r.Context(), id)
	if err != nil || ar.Done || l.now().Sub(ar.CreatedAt) > l.cfg.AuthRequestLifetime {
		return AuthRequest{}, false
	}
	return ar, true
}

const expired = "This sign-in link is unknown or has expired. Go back to the application and start again."

func (l *login) show(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	if _, ok := l.pending(r, id); !ok {
		l.render(w, r, http.StatusBadRequest, loginData{Error: expired})
		return
	}
	l.render(w, r, http.StatusOK, loginData{ID: id})
}

func (l *login) submit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		l.render(w, r, http.StatusBadRequest, loginData{Error: "The form could not be read."})
		return
	}
	id := r.PostForm.Get("authRequestID")
	email := account.NormalizeEmail(r.PostForm.Get("email"))
	password := r.PostForm.Get("password")
	if _, ok := l.pending(r, id); !ok {
		l.render(w, r, http.StatusBadRequest, loginData{Error: expired})
		return
	}
	if retry, limited := l.limited(email); limited {
		w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds())+1))
		l.render(w, r, http.StatusTooManyRequests, loginData{ID: id, Email: email,
			Error: "Too many wrong passwords for this e-mail. Wait a few minutes and try again."})
		return
	}
	a, err := l.authenticate(r.Context(), email, password)
	if errors.Is(err, account.ErrBadCredentials) {
		l.fail(email)
		l.render(w, r, http.StatusUnauthorized, loginData{ID: id, Email: email, Error: "Wrong e-mail or password."})
		return
	}
	if err != nil {
		l.cfg.Logger.ErrorContext(r.Context(), "sign-in failed", "error", err) // never the password
		l.render(w, r, http.StatusServiceUnavailable, loginData{ID: id, Email: email, Error: "Signing in is not possible right now. Try again shortly."})
		return
	}
	l.succeed(email)
	if err := l.store.CompleteAuthRequest(r.Context(), id, a.ID, l.now().UTC()); err != nil {
		l.render(w, r, http.StatusBadRequest, loginData{Error: expired})
		return
	}
	http.Redirect(w, r, l.callback(r.Context(), id), http.StatusFound)
}

// authenticate returns the active account with email and password, or
// account.ErrBadCredentials (an unknown e-mail costs a hash too).
func (l *login) authenticate(ctx context.Context, email, password string) (account.Account, error) {
	a, err := l.accounts.AccountByEmail(ctx, email)
	if errors.Is(err, account.ErrNotFound) {
		account.SpendPasswordCheck(password)
		return account.Account{}, account.ErrBadCredentials
	}
	if err != nil {
		return account.Account{}, err
	}
	if err := a.Authenticate(password); err != nil {
		return account.Account{}, err
	}
	return a, nil
}

func (l *login) limited(email string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.failures[email]
	if !ok {
		return 0, false
	}
	left := failureWindow - l.now().Sub(f.since)
	if left <= 0 {
		delete(l.failures, email)
		return 0, false
	}
	return left, f.count >= maxFailures
}

func (l *login) fail(email string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	f, ok := l.failures[email]
	if !ok || now.Sub(f.since) > failureWindow {
		if len(l.failures) >= maxTracked {
			for k, v := range l.failures {
				if now.Sub(v.since) > failureWindow || len(l.failures) >= maxTracked {
					delete(l.failures, k)
				}
			}
		}
		f = &failures{since: now}
		l.failures[email] = f
	}
	f.count++
}

func (l *login) succeed(email string) {
	l.mu.Lock()
	delete(l.failures, email)
	l.mu.Unlock()
}
