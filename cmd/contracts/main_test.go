package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckPassesOnTheRepository is what scripts/test runs (without the Node parser).
func TestCheckPassesOnTheRepository(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"-check"}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "sales.orders.order_placed") {
		t.Errorf("no event catalog in the output:\n%s", out.String())
	}
}

// TestCheckReportsDrift edits a copy of the generated files and expects
// -check to fail.
func TestCheckReportsDrift(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run([]string{"-root", root, "-base", ""}, &out); err != nil {
		t.Fatalf("generating into an empty root: %v\n%s", err, out.String())
	}
	p := filepath.Join(root, "contracts", "openapi", "orders.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, bytes.Replace(b, []byte("placeOrder"), []byte("createOrder"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "contracts", "asyncapi", "removed.yaml"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = run([]string{"-check", "-root", root, "-base", ""}, &out)
	if err == nil || !strings.Contains(out.String(), "contracts/openapi/orders.yaml") || !strings.Contains(out.String(), "removed.yaml") {
		t.Fatalf("err %v, output:\n%s", err, out.String())
	}
}
