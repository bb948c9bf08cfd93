// Command contracts generates the platform's contract manifests from the
// code and checks them:
//
//	go run ./cmd/contracts            regenerate contracts/ and docs/, then check
//	go run ./cmd/contracts -check     check only: fail when regenerating would change a file
//
// It writes contracts/openapi/<dir>.yaml (OpenAPI 3.0) and
// contracts/asyncapi/<dir>.yaml (AsyncAPI 2.6) for every service, from the
// route tables and bus registrations the services run with: it builds every
// service of scripts/services.conf and runs it with
// SAGITTARIUS_PRINT_CONTRACTS=1 (internal/contracts/platform), and the generated documentation under
// docs/ (the event catalog and the choreography map). The checks: every
// manifest with kin-openapi and the platform's rules (internal/contracts/lint),
// consumers against publishers, and breaking changes against the manifests
// committed at -base (default HEAD). It prints the event catalog (every
// event with its publisher and consumers) and exits 1 when any check fails.
// The official AsyncAPI parser runs in scripts/contracts (Node).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sagittarius-a/sagittarius/internal/contracts/lint"
	"github.com/sagittarius-a/sagittarius/internal/contracts/platform"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "contracts:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fl := flag.NewFlagSet("contracts", flag.ContinueOnError)
	check := fl.Bool("check", false, "do not write; fail when a committed file differs from what the code generates")
	root := fl.String("root", "", "where the files are written or checked (default: the repository root)")
	src := fl.String("src", "", "the repository whose services are built and run (default: the directory holding go.mod, upwards from here)")
	base := fl.String("base", "HEAD", "git revision whose committed manifests breaking changes are checked against (empty: skip)")
	allowBreaking := fl.Bool("allow-breaking", os.Getenv("CONTRACTS_ALLOW_BREAKING") == "1", "report breaking changes without failing (also CONTRACTS_ALLOW_BREAKING=1)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *src == "" {
		r, err := findRoot()
		if err != nil {
			return err
		}
		*src = r
	}
	if *root == "" {
		*root = *src
	}
	files, err := platform.Generate(*src)
	if err != nil {
		return err
	}
	var findings []lint.Finding
	if *check {
		drift, err := platform.Drift(*root, files)
		if err != nil {
			return err
		}
		findings = append(findings, drift...)
	} else {
		if err := platform.Write(*root, files); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %d files under %s\n", len(files), *root)
	}
	lints, err := platform.Lint(files)
	if err != nil {
		return err
	}
	findings = append(findings, lints...)

	var breaking []lint.Finding
	against := "against " + *base
	if *base == "" {
		against = "(not checked: -base is empty)"
	}
	if *base != "" {
		breaking, err = platform.Breaking(*root, *base, files)
		switch {
		case errors.Is(err, platform.ErrNoGit):
			against = "(not checked: " + err.Error() + ")"
		case err != nil:
			return fmt.Errorf("breaking changes against %s: %w", *base, err)
		}
	}

	c, err := platform.Catalog(files)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "events (publisher -> consumers):")
	for _, e := range c.Events {
		consumers := strings.Join(e.Consumers, ", ")
		if consumers == "" {
			consumers = "(none)"
		}
		fmt.Fprintf(stdout, "  %-45s %-20s -> %s\n", e.Type, e.Publisher, consumers)
	}

	for _, f := range findings {
		fmt.Fprintln(stdout, "FAIL", f)
	}
	for _, f := range breaking {
		fmt.Fprintln(stdout, "BREAKING", f)
	}
	failed := len(findings)
	if !*allowBreaking {
		failed += len(breaking)
	} else if len(breaking) > 0 {
		fmt.Fprintf(stdout, "%d breaking changes against %s allowed (CONTRACTS_ALLOW_BREAKING=1)\n", len(breaking), *base)
	}
	if failed > 0 {
		return fmt.Errorf("%d problems (see FAIL/BREAKING above)", failed)
	}
	fmt.Fprintf(stdout, "ok: %d files current, valid and consistent; no breaking change %s\n", len(files), against)
	return nil
}

// findRoot returns the nearest directory upwards holding go.mod.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the current directory: pass -root")
		}
		dir = parent
	}
}
