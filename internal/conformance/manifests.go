package conformance

import (
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/contracts/catalog"
	"github.com/sagittarius-a/sagittarius/internal/contracts/contracttest"
)

// FromManifests returns the message rules of the committed manifests in
// fsys (openapi/<dir>.yaml, asyncapi/<dir>.yaml): every payload is checked
// against its publisher's AsyncAPI schema and its entity key. It also
// returns the service queues the manifests describe, for Topology.
func FromManifests(fsys fs.FS) (Rules, []string, error) {
	ct, err := contracttest.LoadFS(fsys)
	if err != nil {
		return Rules{}, nil, err
	}
	names, err := fs.Glob(fsys, "asyncapi/*.yaml")
	if err != nil {
		return Rules{}, nil, err
	}
	var docs []catalog.Doc
	for _, n := range names {
		raw, err := fs.ReadFile(fsys, n)
		if err != nil {
			return Rules{}, nil, err
		}
		d, err := catalog.Parse(strings.TrimSuffix(path.Base(n), ".yaml"), raw)
		if err != nil {
			return Rules{}, nil, err
		}
		docs = append(docs, d)
	}
	c, err := catalog.Build(eventbus.Exchange, docs)
	if err != nil {
		return Rules{}, nil, fmt.Errorf("conformance: %w", err)
	}
	rules := Rules{Contracts: ct, EntityKeys: map[string]string{}}
	for _, e := range c.Events {
		if e.Publisher != "" && e.EntityKey != "" {
			rules.EntityKeys[e.Type] = e.EntityKey
		}
	}
	services := make([]string, 0, len(c.Services))
	for _, s := range c.Services {
		services = append(services, s.Name)
	}
	return rules, services, nil
}
