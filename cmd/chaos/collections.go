package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// loadCollections returns, for each service dir of dirs, the path of one of its
// paginated collections (a GET /v1/<name> taking a size parameter), read from
// its OpenAPI manifest committed under root/contracts, not one of the kit's
// failed-messages collections: what databaseRestart
// probes while the database is down. A service without one is an error.
func loadCollections(root string, dirs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(root, "contracts", "openapi", dir+".yaml"))
		if err != nil {
			return nil, err
		}
		var doc struct {
			Paths map[string]struct {
				Get *struct {
					Parameters []struct {
						Name string `yaml:"name"`
						In   string `yaml:"in"`
					} `yaml:"parameters"`
				} `yaml:"get"`
			} `yaml:"paths"`
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("contracts/openapi/%s.yaml: %w", dir, err)
		}
		var paths []string
		for p, item := range doc.Paths {
			// The failed-messages collections are the kit's, the same in
			// every service: probe the service's own.
			if item.Get == nil || strings.HasPrefix(p, "/v1/failed-message") {
				continue
			}
			for _, prm := range item.Get.Parameters {
				if prm.Name == "size" && prm.In == "query" {
					paths = append(paths, p)
					break
				}
			}
		}
		if len(paths) == 0 {
			return nil, fmt.Errorf("contracts/openapi/%s.yaml lists no paginated collection", dir)
		}
		sort.Strings(paths)
		out[dir] = paths[0]
	}
	return out, nil
}
