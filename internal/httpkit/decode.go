package httpkit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/sagittarius-a/sagittarius/internal/problem"
)

// DecodeJSON reads the request body as exactly one JSON value into dst (a
// pointer), strictly. It returns nil or a *problem.Problem:
//   - 415 when Content-Type is not application/json or application/*+json
//     (a charset parameter, if any, must be utf-8);
//   - 413 when the body exceeds the limit (LimitBody, or DefaultMaxBodyBytes);
//   - 400 when the body is empty, not JSON, or holds more than one value;
//   - 422 naming the field (JSON pointer) for an unknown field or a value of
//     the wrong JSON type.
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
	dec := json.NewDecoder(body)
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
