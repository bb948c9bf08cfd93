// Package platform generates the contract files of every process of
// Sagittarius from the services themselves: it builds each service listed in
// scripts/services.conf and runs it with SAGITTARIUS_PRINT_CONTRACTS=1, so
// that the service wires itself the way it does in production (same
// constructors, same registrations, through the service kit) and prints its
// manifests without connecting to anything (internal/service). The result is
// what cmd/contracts writes to contracts/ and what the drift test compares
// with the committed files. A service serves the same documents at
// /v1/contracts, generated at start from its live route table and bus; the
// conformance audit checks that both agree.
//
// No package under internal/ imports a service: this package runs their
// binaries.
package platform

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/service"
)

// ServiceDirs returns the directories (services/<dir>) listed in
// scripts/services.conf under root, in file order.
func ServiceDirs(root string) ([]string, error) {
	conf := filepath.Join(root, "scripts", "services.conf")
	f, err := os.Open(conf)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var dirs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if fields := strings.Fields(line); len(fields) > 0 {
			dirs = append(dirs, fields[0])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("platform: %s lists no service", conf)
	}
	return dirs, nil
}

// Services builds every service of scripts/services.conf under root (one
// go build) and returns what each prints with SAGITTARIUS_PRINT_CONTRACTS=1,
// in the order of services.conf.
func Services(root string) ([]service.Printed, error) {
	dirs, err := ServiceDirs(root)
	if err != nil {
		return nil, err
	}
	bin, err := os.MkdirTemp("", "sagittarius-contracts-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(bin)
	args := []string{"build", "-o", bin + string(filepath.Separator)}
	for _, d := range dirs {
		args = append(args, "./services/"+d)
	}
	build := exec.Command("go", args...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("platform: go build: %w\n%s", err, out)
	}
	out := make([]service.Printed, 0, len(dirs))
	for _, d := range dirs {
		cmd := exec.Command(filepath.Join(bin, d))
		cmd.Dir = root
		cmd.Env = []string{service.EnvPrintContracts + "=1", "SERVICES_CONF=" + filepath.Join(root, "scripts", "services.conf")}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("platform: services/%s %s=1: %w\n%s", d, service.EnvPrintContracts, err, stderr.Bytes())
		}
		var p service.Printed
		if err := json.Unmarshal(stdout.Bytes(), &p); err != nil {
			return nil, fmt.Errorf("platform: services/%s printed no contracts: %w", d, err)
		}
		if p.Dir != d {
			return nil, fmt.Errorf("platform: services/%s printed the contracts of %q", d, p.Dir)
		}
		out = append(out, p)
	}
	return out, nil
}

// Printed turns what services printed into contract files:
// contracts/openapi/<dir>.yaml and contracts/asyncapi/<dir>.yaml.
func Printed(printed []service.Printed) (Files, error) {
	files := Files{}
	for _, p := range printed {
		y, err := contracts.ToYAML(p.OpenAPI)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Dir, err)
		}
		files["contracts/openapi/"+p.Dir+".yaml"] = y
		if len(p.AsyncAPI) > 0 {
			if y, err = contracts.ToYAML(p.AsyncAPI); err != nil {
				return nil, fmt.Errorf("%s: %w", p.Dir, err)
			}
			files["contracts/asyncapi/"+p.Dir+".yaml"] = y
		}
	}
	return files, nil
}
