// Command dashboards writes the Grafana dashboards of Sagittarius, generated
// from scripts/services.conf, into deploy/grafana/dashboards (run it from
// deploy/validate after changing the generator or services.conf):
//
//	go run ./cmd/dashboards
//
// It removes sagittarius-*.json files the generator no longer writes.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sagittarius-a/sagittarius/deploy/validate/grafana"
	"github.com/sagittarius-a/sagittarius/deploy/validate/servicesconf"
)

func main() {
	conf := flag.String("services", "../../scripts/services.conf", "path of services.conf")
	out := flag.String("out", "../grafana/dashboards", "folder of the dashboards")
	flag.Parse()
	if err := run(*conf, *out); err != nil {
		fmt.Fprintln(os.Stderr, "dashboards:", err)
		os.Exit(1)
	}
}

func run(conf, out string) error {
	svcs, err := servicesconf.ReadFile(conf)
	if err != nil {
		return err
	}
	files, err := grafana.Files(svcs)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(out, "sagittarius-*.json"))
	for _, f := range old {
		if _, keep := files[filepath.Base(f)]; !keep {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(out, name), b, 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", filepath.Join(out, name))
	}
	return nil
}
