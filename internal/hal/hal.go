// Package hal renders HAL documents (application/hal+json): links, resources
// and paginated collections, with absolute links built from the platform's
// public base URL (the gateway), e.g.
//
//	base, _ := hal.NewBase("http://127.0.0.1:8080")
//	api := base.Join("customers", "v1")        // http://127.0.0.1:8080/customers/v1
//	api.Href("customers", id)                  // http://127.0.0.1:8080/customers/v1/customers/<id>
//
// Resources are plain structs with a field
//
//	Links hal.Links `json:"_links"`
//
// so the same struct serves as REST model and event payload.
package hal

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/sagittarius-a/sagittarius/internal/problem"
)

// ContentType is the media type of every HAL document the services send.
const ContentType = "application/hal+json"

// Link is a HAL link object. Templated links carry an RFC 6570 URI template.
type Link struct {
	Href      string `json:"href"`
	Templated bool   `json:"templated,omitempty"`
	Title     string `json:"title,omitempty"`
	Name      string `json:"name,omitempty"`
	Type      string `json:"type,omitempty"`
}

// Rel is the value of one link relation: a single link object, or an array
// of links for relations that are lists (an order's products). A list
// relation is always rendered as a JSON array, even with one element, as the
// HAL spec asks. The zero Rel is an empty single relation.
type Rel struct {
	links []Link
	many  bool
}

// One returns a single-link relation.
func One(l Link) Rel { return Rel{links: []Link{l}} }

// Many returns a list relation (rendered as an array, possibly empty).
func Many(ls ...Link) Rel { return Rel{links: append([]Link{}, ls...), many: true} }

// To is One(Link{Href: href}).
func To(href string) Rel { return One(Link{Href: href}) }

// Links returns the links of r (a copy).
func (r Rel) Links() []Link { return append([]Link(nil), r.links...) }

// IsList reports whether r renders as an array.
func (r Rel) IsList() bool { return r.many }

// MarshalJSON renders a single relation as an object, a list as an array.
// Its output is that of encoding/json for Link values, without HTML escaping
// (an encoder that escapes HTML, like json.Marshal, still escapes it).
func (r Rel) MarshalJSON() ([]byte, error) { return r.appendJSON(make([]byte, 0, 96)), nil }

func (r Rel) appendJSON(b []byte) []byte {
	if !r.many {
		if len(r.links) == 0 {
			return Link{}.appendJSON(b)
		}
		return r.links[0].appendJSON(b)
	}
	b = append(b, '[')
	for i, l := range r.links {
		if i > 0 {
			b = append(b, ',')
		}
		b = l.appendJSON(b)
	}
	return append(b, ']')
}

// appendJSON appends l as encoding/json renders it (fields in declaration
// order, empty optional ones omitted), without HTML escaping.
func (l Link) appendJSON(b []byte) []byte {
	b = append(b, `{"href":`...)
	b = appendJSONString(b, l.Href)
	if l.Templated {
		b = append(b, `,"templated":true`...)
	}
	for _, f := range [...]struct{ key, val string }{{`,"title":`, l.Title}, {`,"name":`, l.Name}, {`,"type":`, l.Type}} {
		if f.val != "" {
			b = append(b, f.key...)
			b = appendJSONString(b, f.val)
		}
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string the way encoding/json writes
// it without HTML escaping: quotes, backslashes and control characters
// escaped, invalid UTF-8 replaced by U+FFFD, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// UnmarshalJSON accepts a link object or an array of link objects.
func (r *Rel) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var ls []Link
		if err := json.Unmarshal(b, &ls); err != nil {
			return err
		}
		*r = Many(ls...)
		return nil
	}
	var l Link
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*r = One(l)
	return nil
}

// Links maps relation names to relations; "self" is mandatory on every
// resource. Relation names are lower-case words with dashes (or IANA names).
type Links map[string]Rel

// MarshalJSON renders the relations as one object with the names sorted, as
// encoding/json renders a map, in a single pass (an order's links were a
// third of the orders service's CPU when encoded relation by relation).
func (ls Links) MarshalJSON() ([]byte, error) {
	if ls == nil {
		return []byte("null"), nil
	}
	names := make([]string, 0, len(ls))
	for name := range ls {
		names = append(names, name)
	}
	slices.Sort(names)
	b := make([]byte, 0, 16+96*len(ls))
	b = append(b, '{')
	for i, name := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, name)
		b = append(b, ':')
		b = ls[name].appendJSON(b)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads the relations. The usual shape (link objects and
// arrays of them, whose strings are plain ASCII without escapes) is read in
// one pass; anything else is read by encoding/json, with the same result.
// Consumers decode the links of every event they handle: through
// encoding/json, each relation was a separate Unmarshal (a validation scan
// and reflection), a third of an event's decoding.
func (ls *Links) UnmarshalJSON(b []byte) error {
	if m, ok := parseLinks(b); ok {
		*ls = m
		return nil
	}
	var m map[string]Rel
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*ls = m
	return nil
}

// linkParser reads the usual shape of a links object (see
// Links.UnmarshalJSON). Its methods report false for anything else, and the
// caller falls back to encoding/json.
type linkParser struct {
	b []byte
	i int
}

func parseLinks(b []byte) (Links, bool) {
	p := linkParser{b: b}
	if !p.consume('{') {
		return nil, false
	}
	m := make(Links, 8)
	if p.consume('}') {
		return m, p.end()
	}
	for {
		name, ok := p.str()
		if !ok || !p.consume(':') {
			return nil, false
		}
		p.ws()
		switch {
		case p.i < len(p.b) && p.b[p.i] == '{':
			l, ok := p.link()
			if !ok {
				return nil, false
			}
			m[name] = One(l)
		case p.consume('['):
			ls := []Link{}
			if !p.consume(']') {
				for {
					l, ok := p.link()
					if !ok {
						return nil, false
					}
					ls = append(ls, l)
					if p.consume(']') {
						break
					}
					if !p.consume(',') {
						return nil, false
					}
				}
			}
			m[name] = Rel{links: ls, many: true}
		default:
			return nil, false
		}
		if p.consume('}') {
			return m, p.end()
		}
		if !p.consume(',') {
			return nil, false
		}
	}
}

// link reads one link object with the fields of Link, spelled as they are.
func (p *linkParser) link() (Link, bool) {
	var l Link
	if !p.consume('{') {
		return l, false
	}
	if p.consume('}') {
		return l, true
	}
	for {
		key, ok := p.str()
		if !ok || !p.consume(':') {
			return l, false
		}
		switch key {
		case "href":
			l.Href, ok = p.str()
		case "title":
			l.Title, ok = p.str()
		case "name":
			l.Name, ok = p.str()
		case "type":
			l.Type, ok = p.str()
		case "templated":
			l.Templated, ok = p.boolean()
		default:
			ok = false
		}
		if !ok {
			return l, false
		}
		if p.consume('}') {
			return l, true
		}
		if !p.consume(',') {
			return l, false
		}
	}
}

// str reads a string of printable ASCII without escapes.
func (p *linkParser) str() (string, bool) {
	if !p.consume('"') {
		return "", false
	}
	start := p.i
	for ; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '"':
			s := string(p.b[start:p.i])
			p.i++
			return s, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return "", false
		}
	}
	return "", false
}

func (p *linkParser) boolean() (bool, bool) {
	p.ws()
	switch {
	case bytes.HasPrefix(p.b[p.i:], []byte("true")):
		p.i += 4
		return true, true
	case bytes.HasPrefix(p.b[p.i:], []byte("false")):
		p.i += 5
		return false, true
	}
	return false, false
}

// consume skips white space and then c, if c is next.
func (p *linkParser) consume(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *linkParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// end reports whether only white space is left.
func (p *linkParser) end() bool {
	p.ws()
	return p.i == len(p.b)
}

// Set sets rel to the single link href.
func (ls Links) Set(rel, href string) { ls[rel] = To(href) }

// SetLink sets rel to the single link l.
func (ls Links) SetLink(rel string, l Link) { ls[rel] = One(l) }

// Append adds href to the list relation rel (creating it as a list).
func (ls Links) Append(rel, href string) {
	r := ls[rel]
	ls[rel] = Rel{links: append(r.links, Link{Href: href}), many: true}
}

// Href returns the href of the first link of rel, or "" when there is none.
func (ls Links) Href(rel string) string {
	if r, ok := ls[rel]; ok && len(r.links) > 0 {
		return r.links[0].Href
	}
	return ""
}

// Base is an absolute URL prefix ending without a slash, e.g.
// "http://127.0.0.1:8080/orders/v1". The zero Base builds relative paths.
// A Base is an immutable value, safe for concurrent use.
type Base struct{ prefix string }

// NewBase validates raw (an absolute http or https URL without query or
// fragment, typically PUBLIC_BASE_URL) and returns it as a Base. A trailing
// slash is removed.
func NewBase(raw string) (Base, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Base{}, fmt.Errorf("hal: base url %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Base{}, fmt.Errorf("hal: base url %q: want an absolute http(s) URL", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return Base{}, fmt.Errorf("hal: base url %q: must not have user info, query or fragment", raw)
	}
	return Base{prefix: strings.TrimRight(u.String(), "/")}, nil
}

// MustBase is NewBase for constants in tests; it panics on an invalid URL.
func MustBase(raw string) Base {
	b, err := NewBase(raw)
	if err != nil {
		panic(err)
	}
	return b
}

// String returns the prefix, without a trailing slash.
func (b Base) String() string { return b.prefix }

// Join returns the Base extended by path segments (each path-escaped).
func (b Base) Join(segments ...string) Base { return Base{prefix: b.Href(segments...)} }

// Href returns the base followed by the path-escaped segments, joined by "/".
// Href() is the base itself.
func (b Base) Href(segments ...string) string {
	var s strings.Builder
	s.WriteString(b.prefix)
	for _, seg := range segments {
		s.WriteByte('/')
		s.WriteString(url.PathEscape(seg))
	}
	return s.String()
}

// HrefQuery is Href with an encoded query string appended when q is not empty.
func (b Base) HrefQuery(q url.Values, segments ...string) string {
	h := b.Href(segments...)
	if enc := q.Encode(); enc != "" {
		h += "?" + enc
	}
	return h
}

// Write sends v as application/hal+json with the given status (without
// HTML escaping, so links read "?page=2&size=20"). If v cannot be encoded,
// a 500 problem is sent instead (and nothing of v).
func Write(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		problem.Write(w, r, problem.Internal())
		return
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Content-Length", fmt.Sprint(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
