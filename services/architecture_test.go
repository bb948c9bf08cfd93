// Package services_test checks, from the import graph, the architecture rules
// that keep the services independent (see CONVENTIONS.md):
//
//   - a service imports another service only through its events package
//     (services/<dir>/<name>events): no domain, store or HTTP code is shared,
//     and no service can call another's API through shared client code;
//   - a service's domain package is free of transport and storage imports.
package services_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/sagittarius-a/sagittarius/"

type pkg struct {
	ImportPath   string
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

func TestServicesShareOnlyEventsPackages(t *testing.T) {
	pkgs := listPackages(t)
	if len(pkgs) < 20 {
		t.Fatalf("go list found only %d packages: is the test running from services/?", len(pkgs))
	}
	checked := 0
	for _, p := range pkgs {
		from := serviceOf(p.ImportPath)
		if from == "" || from == "e2e" {
			continue // end-to-end tests drive every service from outside
		}
		for _, imp := range p.Imports {
			to := serviceOf(imp)
			if to == "" || to == from {
				continue
			}
			checked++
			last := imp[strings.LastIndex(imp, "/")+1:]
			if !strings.HasSuffix(last, "events") || strings.Count(strings.TrimPrefix(imp, module+"services/"), "/") != 1 {
				t.Errorf("%s imports %s: a service may import another service only through its events package", p.ImportPath, imp)
			}
		}
	}
	if checked == 0 {
		t.Error("no cross-service import found at all: the check is not looking at the right packages")
	}
}

func TestDomainPackagesAreFreeOfTransportAndStorage(t *testing.T) {
	domains := map[string]bool{
		"customers/customer": true, "catalog/product": true, "orders/order": true,
		"inventory/inventory": true, "payments/payment": true, "shipping/shipment": true,
	}
	forbidden := []string{"net/http", "database/sql", "github.com/jmoiron/sqlx", "github.com/go-sql-driver/mysql",
		"github.com/rabbitmq/amqp091-go", "github.com/gorilla/mux"}
	found := 0
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(p.ImportPath, module+"services/")
		if !domains[rel] {
			continue
		}
		found++
		for _, imp := range p.Imports {
			for _, f := range forbidden {
				if imp == f {
					t.Errorf("domain package %s imports %s", p.ImportPath, imp)
				}
			}
		}
	}
	if found != len(domains) {
		t.Errorf("found %d of %d domain packages: update the list", found, len(domains))
	}
}
