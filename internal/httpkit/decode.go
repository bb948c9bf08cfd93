package httpkit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sagittarius-a/sagittarius/internal/problem"
)

// DecodeJSON reads the request body as exactly one JSON value into dst (a
// pointer), strictly. It returns nil or a *problem.Problem:
//   - 415 when Content-Type is not application/json or application/*+json
//     (a charset parameter, if any, must be utf-8);
//   - 413 when the body exceeds the limit (LimitBody, or DefaultMaxBodyBytes),
//     with or without Content-Length;
//   - 400 when the body is empty, not valid UTF-8, not JSON, or holds more
//     than one value;
//   - 422 naming the field (JSON pointer) for an unknown field, a value of
//     the wrong JSON type, a key that appears twice in one object (never "the
//     last one wins"), or a string holding a NUL character.
//
// Semantic validation is the caller's (problem.Fields). DecodeJSON never
// panics on any input; it panics only if dst is not a non-nil pointer, a
// programming error.
func DecodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	if err := CheckJSONContentType(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	if r.Body == nil {
		return problem.BadRequest("request body is empty")
	}
	body := http.MaxBytesReader(w, r.Body, DefaultMaxBodyBytes)
	return decodeJSON(body, dst)
}

// CheckJSONContentType returns a 415 *problem.Problem unless ct is
// application/json or application/<something>+json with no charset other
// than utf-8.
func CheckJSONContentType(ct string) error {
	if ct == "" {
		return problem.New(http.StatusUnsupportedMediaType, "Content-Type must be application/json")
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return problem.New(http.StatusUnsupportedMediaType, "Content-Type is not a valid media type")
	}
	if mt != "application/json" && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return problem.Newf(http.StatusUnsupportedMediaType, "Content-Type %s is not supported; use application/json", mt)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return problem.New(http.StatusUnsupportedMediaType, "charset must be utf-8")
	}
	return nil
}

func decodeJSON(body io.Reader, dst any) error {
	raw, err := io.ReadAll(body)
	if err != nil {
		return decodeProblem(err)
	}
	if !utf8.Valid(raw) {
		return problem.BadRequest("request body is not valid UTF-8")
	}
	if err := checkStrict(raw); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeProblem(err)
	}
	// Exactly one value: anything but trailing whitespace is an error.
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return decodeProblem(err)
		}
		return problem.BadRequest("request body must contain a single JSON value")
	}
	return nil
}

func decodeProblem(err error) error {
	var (
		syntax  *json.SyntaxError
		typ     *json.UnmarshalTypeError
		tooBig  *http.MaxBytesError
		invalid *json.InvalidUnmarshalError
	)
	switch {
	case errors.As(err, &invalid):
		panic(fmt.Sprintf("httpkit.DecodeJSON: %v", err))
	case errors.As(err, &tooBig):
		return problem.Newf(http.StatusRequestEntityTooLarge, "request body exceeds %d bytes", tooBig.Limit)
	case errors.Is(err, io.EOF):
		return problem.BadRequest("request body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return problem.BadRequest("request body is truncated JSON")
	case errors.As(err, &syntax):
		return problem.Newf(http.StatusBadRequest, "request body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typ):
		field := "/" + strings.ReplaceAll(typ.Field, ".", "/")
		if typ.Field == "" {
			field = ""
		}
		return problem.Validation(problem.FieldError{Field: field, Message: "must be " + jsonKind(typ.Type)})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return problem.Validation(problem.FieldError{Field: "/" + name, Message: "is not a known field"})
	default:
		// An UnmarshalJSON method of a field rejected its value (time.Time, ...).
		return problem.Validation(problem.FieldError{Field: "", Message: "has an invalid value: " + err.Error()})
	}
}

// jsonKind names the JSON type a Go type expects, for error messages.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a valid value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer in range"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a valid value"
}

// checkStrict walks the JSON tokens of raw once and refuses what encoding/json
// would silently accept: a key that appears twice in one object (422 naming
// it) and a NUL character in a key or a string value (422). Syntax errors are
// left to the decoder that follows, which reports them with their offset.
func checkStrict(raw []byte) error {
	type frame struct {
		object bool
		keys   map[string]bool
		key    string // the current key of an object, the index of an array
		index  int
		expect bool // object: the next token is a key
	}
	var stack []frame
	pointer := func() string { // the JSON pointer of the current value
		var b strings.Builder
		for _, f := range stack {
			b.WriteByte('/')
			if f.object {
				b.WriteString(escapePointer(f.key))
			} else {
				b.WriteString(strconv.Itoa(f.index))
			}
		}
		return b.String()
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // io.EOF, or a syntax error the decoder reports
		}
		// A value ends: advance the enclosing container.
		advance := func() {
			if n := len(stack); n > 0 {
				if stack[n-1].object {
					stack[n-1].expect = true
				} else {
					stack[n-1].index++
				}
			}
		}
		top := len(stack) - 1
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, frame{object: true, keys: map[string]bool{}, expect: true})
			case '[':
				stack = append(stack, frame{})
			case '}', ']':
				stack = stack[:top]
				advance()
			}
		case string:
			if top >= 0 && stack[top].object && stack[top].expect {
				dup := stack[top].keys[t]
				stack[top].keys[t] = true
				stack[top].key, stack[top].expect = t, false
				if strings.IndexByte(t, 0) >= 0 {
					stack[top].key = ""
					return problem.Validation(problem.FieldError{Field: pointer(), Message: "has a key with a NUL character"})
				}
				if dup {
					return problem.Validation(problem.FieldError{Field: pointer(), Message: "appears more than once"})
				}
				continue
			}
			if strings.IndexByte(t, 0) >= 0 {
				return problem.Validation(problem.FieldError{Field: pointer(), Message: "must not contain NUL characters"})
			}
			advance()
		default:
			advance()
		}
	}
}

// escapePointer escapes a key for a JSON pointer (RFC 6901).
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
