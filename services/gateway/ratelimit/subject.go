package ratelimit

import "net/http"

// SubjectKey returns the KeyFunc counting per verified subject: subject
// reports the subject of a request whose credentials were verified (e.g.
// from internal/auth's principal in the request's context), and a request
// without one is counted by fallback (usually AddrKey). Keys of the two
// kinds never collide ("sub:" and "addr:" prefixes).
//
// The middleware that verifies credentials must run before the limiter for
// subject to see the principal.
func SubjectKey(subject func(r *http.Request) (string, bool), fallback KeyFunc) KeyFunc {
	return func(r *http.Request) string {
		if s, ok := subject(r); ok && s != "" {
			return "sub:" + s
		}
		return fallback(r)
	}
}
