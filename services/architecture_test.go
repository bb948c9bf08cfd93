// Package services_test checks, from the import graph and the tree, the
// architecture rules that keep the services independent (see CONVENTIONS.md),
// and that scripts/services.conf is the one list of services:
//
//   - every directory under services/ is a line of scripts/services.conf and
//     every line a directory, and every service can be classified: its main
//     package, one events package (<name>events, for a service with a queue),
//     its adapters (httpapi, mysql, eventapi, idp) and at least one domain package
//     (every other package);
//   - a service imports another service only through its events package
//     (services/<dir>/<name>events): no domain, store or HTTP code is shared,
//     and no service can call another's API through shared client code;
//   - a service's domain packages are free of transport and storage imports.
package services_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/sagittarius-a/sagittarius/internal/platform"
)

const module = "github.com/sagittarius-a/sagittarius/"

type pkg struct {
	ImportPath   string
	Name         string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v", err)
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found only %d packages: is the test running from services/?", len(pkgs))
	}
	return pkgs
}

// serviceOf returns the service directory of a package path, or "".
func serviceOf(path string) string {
	rest, ok := strings.CutPrefix(path, module+"services/")
	if !ok {
		return ""
	}
	dir, _, _ := strings.Cut(rest, "/")
	return dir
}

// The kinds of package of a service.
const (
	kindMain    = "main"
	kindEvents  = "events"
	kindAdapter = "adapter"
	kindDomain  = "domain"
)

// adapters are the packages through which a service meets the outside:
// its REST API, its store, its event handlers, and idp, the identity
// service's OpenID provider (a protocol surface over HTTP: discovery, keys,
// tokens and the sign-in page, outside its REST API).
var adapters = []string{"httpapi", "mysql", "eventapi", "idp"}

// kindOf classifies a package of a service by its path under services/<dir>/:
// the service's root is its main package; <name>events its events package;
// httpapi, mysql, eventapi (and their subpackages) its adapters; any other
// package belongs to its domain.
func kindOf(path string) string {
	rest := strings.TrimPrefix(path, module+"services/")
	_, sub, ok := strings.Cut(rest, "/")
	if !ok {
		return kindMain
	}
	first, _, _ := strings.Cut(sub, "/")
	switch {
	case slices.Contains(adapters, first):
		return kindAdapter
	case strings.HasSuffix(first, "events") && first == sub:
		return kindEvents
	default:
		return kindDomain
	}
}

// service is what the tree holds of one service directory.
type service struct {
	packages map[string][]pkg // kind -> packages
}

// servicesFromTree groups the packages under services/ by service and kind.
func servicesFromTree(t *testing.T) map[string]*service {
	t.Helper()
	out := map[string]*service{}
	for _, p := range listPackages(t) {
		dir := serviceOf(p.ImportPath)
		if dir == "" {
			continue
		}
		s := out[dir]
		if s == nil {
			s = &service{packages: map[string][]pkg{}}
			out[dir] = s
		}
		k := kindOf(p.ImportPath)
		s.packages[k] = append(s.packages[k], p)
	}
	return out
}

func names(ps []pkg) []string {
	var out []string
	for _, p := range ps {
		out = append(out, strings.TrimPrefix(p.ImportPath, module))
	}
	sort.Strings(out)
	return out
}

// TestEveryServiceIsClassified fails on a service directory that is not a line
// of scripts/services.conf, a line without a directory, and a service whose
// packages do not have the shape of a service.
func TestEveryServiceIsClassified(t *testing.T) {
	lines, err := platform.ReadServices("..")
	if err != nil {
		t.Fatal(err)
	}
	tree := servicesFromTree(t)
	listed := map[string]bool{}
	for _, l := range lines {
		listed[l.Dir] = true
		s := tree[l.Dir]
		if s == nil {
			t.Errorf("services.conf lists %s but services/%s holds no Go package", l.Dir, l.Dir)
			continue
		}
		if m := s.packages[kindMain]; len(m) != 1 || m[0].Name != "main" {
			t.Errorf("services/%s: its root must be its main package (package main), found %v", l.Dir, names(m))
		}
		ev, dom := s.packages[kindEvents], s.packages[kindDomain]
		if !l.HasQueue() {
			if len(ev) != 0 {
				t.Errorf("services/%s has no queue in services.conf but an events package %v", l.Dir, names(ev))
			}
			continue
		}
		if len(ev) != 1 {
			t.Errorf("services/%s: want exactly one events package (services/%s/<name>events), found %v", l.Dir, l.Dir, names(ev))
		}
		if len(dom) == 0 {
			t.Errorf("services/%s has no domain package (a package that is not its main, events or adapter packages %v)", l.Dir, adapters)
		}
	}
	for dir := range tree {
		if !listed[dir] {
			t.Errorf("services/%s is not a line of scripts/services.conf: every directory under services/ is a service listed there (tools go to cmd/, tests to e2e/)", dir)
		}
	}
}

func TestServicesShareOnlyEventsPackages(t *testing.T) {
	checked := 0
	for _, p := range listPackages(t) {
		from := serviceOf(p.ImportPath)
		if from == "" {
			continue
		}
		for _, imp := range p.Imports {
			to := serviceOf(imp)
			if to == "" || to == from {
				continue
			}
			checked++
			if kindOf(imp) != kindEvents {
				t.Errorf("%s imports %s: a service may import another service only through its events package", p.ImportPath, imp)
			}
		}
	}
	if checked == 0 {
		t.Error("no cross-service import found at all: the check is not looking at the right packages")
	}
}

func TestDomainPackagesAreFreeOfTransportAndStorage(t *testing.T) {
	forbidden := []string{"net/http", "database/sql", "github.com/jmoiron/sqlx", "github.com/go-sql-driver/mysql",
		"github.com/rabbitmq/amqp091-go", "github.com/gorilla/mux"}
	lines, err := platform.ReadServices("..")
	if err != nil {
		t.Fatal(err)
	}
	withQueue := map[string]bool{}
	for _, l := range lines {
		withQueue[l.Dir] = l.HasQueue()
	}
	found := 0
	for dir, s := range servicesFromTree(t) {
		if !withQueue[dir] {
			continue // the gateway is transport only: it has no domain (and a stray directory fails TestEveryServiceIsClassified)
		}
		for _, p := range s.packages[kindDomain] {
			found++
			for _, imp := range p.Imports {
				if slices.Contains(forbidden, imp) {
					t.Errorf("domain package %s imports %s", p.ImportPath, imp)
				}
			}
		}
	}
	if found == 0 {
		t.Error("no domain package found: the check is not looking at the right packages")
	}
}
