package httpkit

import (
	"net/http"
	"strconv"
	"strings"
)

// ETag returns the strong entity tag of a resource version: "\"7\"".
func ETag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// SetETag sets the ETag response header for version.
func SetETag(w http.ResponseWriter, version int64) { w.Header().Set("ETag", ETag(version)) }

// Precondition is a parsed If-Match header. The zero value (header absent)
// allows every version.
type Precondition struct {
	present bool
	any     bool
	tags    []string
}

// IfMatch parses r's If-Match header (RFC 9110 13.1.1): absent, "*", or a
// comma-separated list of entity tags. Weak tags never match (strong
// comparison), and a malformed header matches nothing, so it yields 412.
func IfMatch(r *http.Request) Precondition {
	vals := r.Header.Values("If-Match")
	if len(vals) == 0 {
		return Precondition{}
	}
	p := Precondition{present: true}
	for _, v := range vals {
		for _, tag := range strings.Split(v, ",") {
			tag = strings.TrimSpace(tag)
			if tag == "*" {
				p.any = true
			} else if tag != "" {
				p.tags = append(p.tags, tag)
			}
		}
	}
	return p
}

// Present reports whether the request carried If-Match.
func (p Precondition) Present() bool { return p.present }

// Allows reports whether a resource at version may be changed: true when
// If-Match was absent or "*", or when one of its tags equals ETag(version).
// When Allows returns false the handler answers 412.
func (p Precondition) Allows(version int64) bool {
	if !p.present || p.any {
		return true
	}
	want := ETag(version)
	for _, t := range p.tags {
		if t == want {
			return true
		}
	}
	return false
}
