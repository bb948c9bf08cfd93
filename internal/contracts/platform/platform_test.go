package platform

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/contracts/catalog"
	"github.com/sagittarius-a/sagittarius/internal/contracts/fixture"
	"github.com/sagittarius-a/sagittarius/internal/hal"
)

// repoRoot is the repository root: SAGITTARIUS_ROOT, or upwards from here.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := findRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func findRoot() (string, error) {
	if r := os.Getenv("SAGITTARIUS_ROOT"); r != "" {
		return r, nil
	}
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the test directory")
		}
		dir = parent
	}
}

// generated is Generate's result, computed once for the tests of this
// package (generation is reflection-heavy, slow under -race).
var generated = sync.OnceValues(func() (Files, error) {
	root, err := findRoot()
	if err != nil {
		return nil, err
	}
	return Generate(root)
})

// TestCommittedContractsAreCurrent fails when regenerating the contracts
// would change a committed file: a route, a Go type of a request, response
// or event, or a bus registration changed without `scripts/contracts`.
func TestCommittedContractsAreCurrent(t *testing.T) {
	files, err := generated()
	if err != nil {
		t.Fatal(err)
	}
	drift, err := Drift(repoRoot(t), files)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range drift {
		t.Error(f)
	}
}

// TestContractsPassTheChecks runs kin-openapi, the naming and binding rules
// and the consumer/publisher cross-checks on the generated manifests.
func TestContractsPassTheChecks(t *testing.T) {
	files, err := generated()
	if err != nil {
		t.Fatal(err)
	}
	findings, err := Lint(files)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		t.Error(f)
	}
	c, err := Catalog(files)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range c.Events {
		t.Logf("%-48s %-20s -> %s", e.Type, e.Publisher, strings.Join(e.Consumers, ", "))
	}
}

// TestNoBreakingChange compares the generated manifests with those
// committed at HEAD. CONTRACTS_ALLOW_BREAKING=1 reports without failing.
func TestNoBreakingChange(t *testing.T) {
	root := repoRoot(t)
	if err := exec.Command("git", "-C", root, "rev-parse", "--verify", "--quiet", "HEAD").Run(); err != nil {
		t.Skip("not a git work tree with commits: nothing to compare with")
	}
	files, err := generated()
	if err != nil {
		t.Fatal(err)
	}
	breaking, err := Breaking(root, "HEAD", files)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range breaking {
		if os.Getenv("CONTRACTS_ALLOW_BREAKING") == "1" {
			t.Log("BREAKING (allowed):", f)
			continue
		}
		t.Error("BREAKING:", f, "(set CONTRACTS_ALLOW_BREAKING=1 if it is deliberate)")
	}
}

// TestAsyncAPIParser validates the committed AsyncAPI manifests with the
// official parser when it is installed (scripts/contracts --check installs
// it; CONTRACTS_REQUIRE_PARSER=1 makes its absence a failure).
func TestAsyncAPIParser(t *testing.T) {
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "node_modules", "@asyncapi", "parser", "package.json")); err != nil {
		if os.Getenv("CONTRACTS_REQUIRE_PARSER") == "1" {
			t.Fatal("@asyncapi/parser is not installed: run scripts/contracts --check")
		}
		t.Skip("@asyncapi/parser is not installed (scripts/contracts --check installs it)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	docs, _ := filepath.Glob(filepath.Join(root, "contracts", "asyncapi", "*.yaml"))
	if len(docs) == 0 {
		t.Fatal("no AsyncAPI manifests")
	}
	cmd := exec.Command(node, append([]string{filepath.Join(root, "contracts", "validate-asyncapi.cjs")}, docs...)...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("@asyncapi/parser: %v", err)
	}
}

// TestDriftCatchesStructChanges shows that the drift check fails when a
// field is added to (or removed from) a Go type of an event or a response
// without regenerating the manifests.
func TestDriftCatchesStructChanges(t *testing.T) {
	root := t.TempDir()
	api := fixture.NewAPI(hal.MustBase("http://gw"))
	committed, err := Manifests([]contracts.Service{api.Service()})
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(root, committed); err != nil {
		t.Fatal(err)
	}
	if drift, _ := Drift(root, committed); len(drift) > 0 {
		t.Fatalf("no change, yet drift: %v", drift)
	}

	type widgetPlus struct {
		fixture.Widget
		Colour string `json:"colour"`
	}
	type widgetMinus struct {
		ID        string    `json:"id"`
		Status    string    `json:"status"`
		Price     int64     `json:"price"`
		Version   int64     `json:"version"`
		CreatedAt time.Time `json:"created_at"`
		Links     hal.Links `json:"_links"`
	}
	cases := map[string]func(s *contracts.Service){
		"event field added": func(s *contracts.Service) {
			ev := s.Events.(fixture.Events)
			ev.Pub = append([]eventbus.EventInfo(nil), ev.Pub...)
			ev.Pub[0].Entity = reflect.TypeFor[widgetPlus]()
			s.Events = ev
		},
		"event field removed": func(s *contracts.Service) {
			ev := s.Events.(fixture.Events)
			ev.Pub = append([]eventbus.EventInfo(nil), ev.Pub...)
			ev.Pub[0].Entity = reflect.TypeFor[widgetMinus]()
			s.Events = ev
		},
		"response field added": func(s *contracts.Service) {
			s.Routes = append([]contracts.Route(nil), s.Routes...)
			s.Routes[3].Responses = []contracts.Response{{Status: 200, Body: widgetPlus{}}}
		},
		"route added": func(s *contracts.Service) {
			s.Routes = append(append([]contracts.Route(nil), s.Routes...), contracts.Route{
				Method: "GET", Path: "/v1/gizmos", Auth: auth.Anyone(), ID: "listGizmos", Summary: "Gizmos",
				Responses: []contracts.Response{{Status: 200, Body: hal.Collection[widgetPlus]{}}}})
		},
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			s := api.Service()
			change(&s)
			now, err := Manifests([]contracts.Service{s})
			if err != nil {
				t.Fatal(err)
			}
			drift, err := Drift(root, now)
			if err != nil {
				t.Fatal(err)
			}
			if len(drift) == 0 {
				t.Fatal("the change went unnoticed")
			}
			t.Log(drift[0])
		})
	}
}

// databaseServices returns the directories of the services that have a
// database, read from scripts/services.conf (a name of "-" means no queue and
// no database: the gateway).
func databaseServices(t *testing.T) []string {
	t.Helper()
	conf, err := os.ReadFile(filepath.Join(repoRoot(t), "scripts", "services.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for line := range strings.SplitSeq(string(conf), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || f[1] == "-" {
			continue
		}
		dirs = append(dirs, f[0])
	}
	if len(dirs) == 0 {
		t.Fatal("scripts/services.conf lists no service with a database")
	}
	return dirs
}

// TestDatabaseServicesDocument503 fails when an operation of a service with
// a database does not document the 503 problem its API answers while the
// database does not (mysqldb.IsUnavailable in each service's error mapping).
func TestDatabaseServicesDocument503(t *testing.T) {
	files, err := generated()
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range databaseServices(t) {
		p := "contracts/openapi/" + dir + ".yaml"
		y, ok := files[p]
		if !ok {
			t.Errorf("%s: not generated", p)
			continue
		}
		doc, err := catalog.Decode(y)
		if err != nil {
			t.Fatal(err)
		}
		resp := catalog.Path(doc, "components", "responses", "ServiceUnavailable")
		if ref := catalog.Path(resp, "content", "application/problem+json", "schema", "$ref"); ref != "#/components/schemas/Problem" {
			t.Errorf("%s: components.responses.ServiceUnavailable is not a problem+json Problem (schema %v)", p, ref)
		}
		if d, _ := catalog.Path(resp, "description").(string); !strings.Contains(d, "database") {
			t.Errorf("%s: the 503 description %q does not name the database", p, d)
		}
		ops := 0
		paths, _ := doc["paths"].(map[string]any)
		for path, item := range paths {
			for method, op := range item.(map[string]any) {
				ops++
				if ref := catalog.Path(op, "responses", "503", "$ref"); ref != "#/components/responses/ServiceUnavailable" {
					t.Errorf("%s: %s %s does not document 503 (ref %v)", p, strings.ToUpper(method), path, ref)
				}
			}
		}
		if ops == 0 {
			t.Errorf("%s: no operations", p)
		}
	}
}
