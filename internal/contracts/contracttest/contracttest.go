// Package contracttest checks what a running platform really sends against
// its committed contracts: HTTP answers against the answering service's
// OpenAPI manifest, event payloads against the publisher's AsyncAPI
// manifest. The end-to-end tests route every request through Transport and
// pass every event they observe to CheckEvent.
//
// The checks are strict where the manifests are open: an object may not
// carry a property its schema does not list (the manifests allow extra
// fields so that adding one is not a breaking change, but the platform's
// own answers must be fully documented), and formats (uuid, date-time) are
// asserted. So a field added to a Go struct but not to the committed
// contract fails the e2e run, and so does a documented field that the
// service stopped sending while it is still required.
package contracttest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/contracts/catalog"
)

// GatewayDir is the manifest name of the gateway's own routes (/, /health).
const GatewayDir = "gateway"

// Contracts holds the compiled manifests of the platform. Its methods are
// safe for concurrent use.
type Contracts struct {
	apis   map[string]*api               // by dir
	events map[string]*jsonschema.Schema // payload schema by type (the publisher's)

	mu       sync.Mutex
	problems []string
	seen     map[string]int // "dir METHOD path status" -> count, for Coverage
}

// api is one OpenAPI manifest.
type api struct {
	dir   string
	paths []*pathOp
}

// pathOp is one operation: its path template split in segments and its
// answers by status and media type.
type pathOp struct {
	method, path string
	segs         []string
	answers      map[string]map[string]*jsonschema.Schema // status -> media type -> schema (nil: no body)
}

// Load reads and compiles every manifest under root/contracts.
func Load(root string) (*Contracts, error) {
	return LoadFS(os.DirFS(filepath.Join(root, "contracts")))
}

// LoadFS reads and compiles the manifests in fsys: openapi/<dir>.yaml and
// asyncapi/<dir>.yaml (the layout of contracts/, and of the embedded
// github.com/sagittarius-a/sagittarius/contracts.FS).
func LoadFS(fsys fs.FS) (*Contracts, error) {
	c := &Contracts{apis: map[string]*api{}, events: map[string]*jsonschema.Schema{}, seen: map[string]int{}}
	comp := jsonschema.NewCompiler()
	comp.DefaultDraft(jsonschema.Draft7)
	comp.AssertFormat()

	files, err := fs.Glob(fsys, "openapi/*.yaml")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		raw, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		a, err := compileAPI(comp, strings.TrimSuffix(filepath.Base(f), ".yaml"), raw)
		if err != nil {
			return nil, fmt.Errorf("contracttest: %s: %w", f, err)
		}
		c.apis[a.dir] = a
	}
	files, err = fs.Glob(fsys, "asyncapi/*.yaml")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		raw, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		dir := strings.TrimSuffix(filepath.Base(f), ".yaml")
		d, err := catalog.Parse(dir, raw)
		if err != nil {
			return nil, err
		}
		if err := compileEvents(comp, d, c.events); err != nil {
			return nil, fmt.Errorf("contracttest: %s: %w", f, err)
		}
	}
	if len(c.apis) == 0 {
		return nil, fmt.Errorf("contracttest: no openapi/*.yaml manifests")
	}
	return c, nil
}

func compileAPI(comp *jsonschema.Compiler, dir string, raw []byte) (*api, error) {
	doc, err := catalog.Decode(raw)
	if err != nil {
		return nil, err
	}
	a := &api{dir: dir}
	var schemas []any
	type slot struct {
		op          *pathOp
		status, ct  string
		schemaIndex int
	}
	var slots []slot
	paths, _ := doc["paths"].(map[string]any)
	for p, item := range paths {
		ops, _ := item.(map[string]any)
		for m, op := range ops {
			po := &pathOp{method: strings.ToUpper(m), path: p, segs: split(p), answers: map[string]map[string]*jsonschema.Schema{}}
			resps, _ := catalog.Path(op, "responses").(map[string]any)
			for status, r := range resps {
				rm, _ := r.(map[string]any)
				if ref, ok := rm["$ref"].(string); ok {
					rm, _ = catalog.Path(doc, "components", "responses", ref[strings.LastIndex(ref, "/")+1:]).(map[string]any)
				}
				po.answers[status] = map[string]*jsonschema.Schema{}
				content, _ := rm["content"].(map[string]any)
				for ct, mt := range content {
					s := catalog.Path(mt, "schema")
					if s == nil {
						po.answers[status][ct] = nil
						continue
					}
					schemas = append(schemas, s)
					slots = append(slots, slot{po, status, ct, len(schemas) - 1})
				}
			}
			a.paths = append(a.paths, po)
		}
	}
	resource := map[string]any{
		"components": map[string]any{"schemas": catalog.Path(doc, "components", "schemas")},
		"x-schemas":  schemas,
	}
	url := "mem://openapi/" + dir + ".json"
	if err := comp.AddResource(url, toJSONSchema(resource, true)); err != nil {
		return nil, err
	}
	for _, s := range slots {
		sch, err := comp.Compile(url + "#/x-schemas/" + strconv.Itoa(s.schemaIndex))
		if err != nil {
			return nil, fmt.Errorf("%s %s %s %s: %w", s.op.method, s.op.path, s.status, s.ct, err)
		}
		s.op.answers[s.status][s.ct] = sch
	}
	// Most specific templates first: fewer parameters win.
	sort.SliceStable(a.paths, func(i, j int) bool { return params(a.paths[i].segs) < params(a.paths[j].segs) })
	return a, nil
}

func compileEvents(comp *jsonschema.Compiler, d catalog.Doc, out map[string]*jsonschema.Schema) error {
	published := d.Published(eventbus.Exchange)
	if len(published) == 0 {
		return nil
	}
	var payloads []any
	for _, t := range published {
		payloads = append(payloads, catalog.Path(d.Message(t), "payload"))
	}
	resource := map[string]any{
		"components": map[string]any{"schemas": d.Schemas()},
		"x-schemas":  payloads,
	}
	url := "mem://asyncapi/" + d.Dir + ".json"
	if err := comp.AddResource(url, toJSONSchema(resource, false)); err != nil {
		return err
	}
	for i, t := range published {
		sch, err := comp.Compile(url + "#/x-schemas/" + strconv.Itoa(i))
		if err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		out[t] = sch
	}
	return nil
}

// toJSONSchema returns a copy of v made strict (objects with properties and
// no additionalProperties get additionalProperties: false) and, for OpenAPI
// 3.0 schemas (openAPI true), with nullable turned into a null type.
func toJSONSchema(v any, openAPI bool) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			if k == "example" || k == "examples" {
				out[k] = x // values, not schemas
				continue
			}
			out[k] = toJSONSchema(x, openAPI)
		}
		if _, ok := out["properties"]; ok {
			if _, ok := out["additionalProperties"]; !ok {
				out["additionalProperties"] = false
			}
		}
		if openAPI && out["nullable"] == true {
			delete(out, "nullable")
			switch typ := out["type"].(type) {
			case string:
				out["type"] = []any{typ, "null"}
			default:
				if ref, ok := out["$ref"]; ok {
					delete(out, "$ref")
					out["anyOf"] = []any{map[string]any{"$ref": ref}, map[string]any{"type": "null"}}
				}
			}
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = toJSONSchema(x, openAPI)
		}
		return out
	}
	return v
}

func split(p string) []string { return strings.Split(strings.Trim(p, "/"), "/") }

func params(segs []string) int {
	n := 0
	for _, s := range segs {
		if strings.HasPrefix(s, "{") {
			n++
		}
	}
	return n
}

// match finds the operation of a's manifest for method and path.
func (a *api) match(method, path string) (*pathOp, bool) {
	segs := split(path)
	pathKnown := false
	for _, po := range a.paths {
		if len(po.segs) != len(segs) {
			continue
		}
		ok := true
		for k, s := range po.segs {
			if !strings.HasPrefix(s, "{") && s != segs[k] {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		pathKnown = true
		if po.method == method {
			return po, true
		}
	}
	return nil, pathKnown
}

// CheckResponse checks one HTTP answer: status, media type and body of a
// request with method to path (as sent to the gateway: /<dir>/v1/...; / and
// /health are the gateway's own). It returns nil when the manifest of the
// service documents the answer exactly.
func (c *Contracts) CheckResponse(method, path string, status int, header http.Header, body []byte) error {
	dir, rest := GatewayDir, path
	if d, r, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/"); ok || d != "" {
		if _, known := c.apis[d]; known {
			dir, rest = d, "/"+r
		}
	}
	a, ok := c.apis[dir]
	if !ok {
		return fmt.Errorf("%s %s: no manifest contracts/openapi/%s.yaml", method, path, dir)
	}
	if method == http.MethodHead {
		method = http.MethodGet
	}
	if edgeAnswer(status, header) {
		return nil // the gateway's edge answers these on any path, before any service (gateway.yaml says so)
	}
	po, pathKnown := a.match(method, rest)
	if po == nil {
		switch {
		case pathKnown && method == http.MethodOptions && status == http.StatusNoContent:
			return nil // the router answers OPTIONS on every documented path with Allow
		case pathKnown && status == http.StatusMethodNotAllowed:
			return nil // the router's answer for an undocumented method on a documented path
		case status == http.StatusNotFound && isProblem(header):
			return nil // the router's answer for a path no route matches
		}
		return fmt.Errorf("%s %s: %d: the operation is not in contracts/openapi/%s.yaml", method, path, status, dir)
	}
	c.mu.Lock()
	c.seen[dir+" "+po.method+" "+po.path+" "+strconv.Itoa(status)]++
	c.mu.Unlock()
	answers, ok := po.answers[strconv.Itoa(status)]
	if !ok {
		return fmt.Errorf("%s %s: status %d is not documented for %s %s in contracts/openapi/%s.yaml", method, path, status, po.method, po.path, dir)
	}
	ct := header.Get("Content-Type")
	if len(body) == 0 && len(answers) == 0 {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil && len(body) > 0 {
		return fmt.Errorf("%s %s: %d: Content-Type %q: %v", method, path, status, ct, err)
	}
	sch, ok := answers[mt]
	if !ok {
		documented := make([]string, 0, len(answers))
		for k := range answers {
			documented = append(documented, k)
		}
		sort.Strings(documented)
		return fmt.Errorf("%s %s: %d answered %s, documented: %v", method, path, status, mt, documented)
	}
	if sch == nil || method == http.MethodHead {
		return nil
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s %s: %d: body is not JSON: %v", method, path, status, err)
	}
	if err := sch.Validate(v); err != nil {
		return fmt.Errorf("%s %s: %d: body does not match %s %s in contracts/openapi/%s.yaml: %v", method, path, status, po.method, po.path, dir, err)
	}
	return nil
}

// CheckEvent checks the payload of an event of type msgType against the
// payload schema in the publisher's AsyncAPI manifest.
func (c *Contracts) CheckEvent(msgType string, body []byte) error {
	sch, ok := c.events[msgType]
	if !ok {
		return fmt.Errorf("event %s: no manifest publishes this type", msgType)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("event %s: payload is not JSON: %v", msgType, err)
	}
	if err := sch.Validate(v); err != nil {
		return fmt.Errorf("event %s: payload does not match the publisher's AsyncAPI manifest: %v", msgType, err)
	}
	return nil
}

// Transport wraps base (nil: http.DefaultTransport) so that every answer
// that passes through it is checked with CheckResponse; failures are kept
// for Err. The body is read and handed on unchanged.
func (c *Contracts) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		res, err := base.RoundTrip(req)
		if err != nil {
			return res, err
		}
		body, rerr := readAll(res)
		if rerr != nil {
			return res, nil // the caller sees the read error itself
		}
		if err := c.CheckResponse(req.Method, req.URL.Path, res.StatusCode, res.Header, body); err != nil {
			c.report(err)
		}
		return res, nil
	})
}

func (c *Contracts) report(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.problems = append(c.problems, err.Error())
}

// Err returns every failure Transport saw, joined, or nil.
func (c *Contracts) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.problems) == 0 {
		return nil
	}
	seen := map[string]bool{}
	var errs []error
	for _, p := range c.problems {
		if !seen[p] {
			seen[p] = true
			errs = append(errs, errors.New(p))
		}
	}
	return errors.Join(errs...)
}

// Coverage lists the documented operations and answers that were checked at
// least once, as "dir METHOD path status", sorted.
func (c *Contracts) Coverage() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.seen))
	for k := range c.seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// readAll reads res.Body and replaces it with a reader over the same bytes.
func readAll(res *http.Response) ([]byte, error) {
	if res.Body == nil {
		return nil, nil
	}
	var buf bytes.Buffer
	_, err := buf.ReadFrom(res.Body)
	res.Body.Close()
	res.Body = readCloser{bytes.NewReader(buf.Bytes())}
	return buf.Bytes(), err
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// edgeAnswer reports whether an answer is one the gateway's edge gives on
// any path (services/gateway/edge, README "The edge"): 429 problem+json with
// Retry-After and the RateLimit headers, or 431 problem+json.
func edgeAnswer(status int, h http.Header) bool {
	switch status {
	case http.StatusTooManyRequests:
		return isProblem(h) && h.Get("Retry-After") != "" && h.Get("RateLimit") != "" && h.Get("RateLimit-Policy") != ""
	case http.StatusRequestHeaderFieldsTooLarge:
		return isProblem(h)
	}
	return false
}

func isProblem(h http.Header) bool {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt == "application/problem+json"
}
