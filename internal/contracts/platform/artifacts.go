package platform

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/contracts/catalog"
	"github.com/sagittarius-a/sagittarius/internal/contracts/lint"
	"github.com/sagittarius-a/sagittarius/internal/portal"
)

// Files are generated files by path relative to the repository root
// (slash-separated), e.g. contracts/openapi/orders.yaml.
type Files map[string][]byte

// Paths returns the paths of f, sorted.
func (f Files) Paths() []string {
	out := make([]string, 0, len(f))
	for p := range f {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Generated directories: every file in them is generated, so a file the
// generator no longer writes is stale.
var generatedDirs = []string{"contracts/openapi", "contracts/asyncapi"}

// Manifests generates the manifests of every service as YAML:
// contracts/openapi/<dir>.yaml and contracts/asyncapi/<dir>.yaml.
func Manifests(services []contracts.Service) (Files, error) {
	files := Files{}
	for _, s := range services {
		m, err := contracts.Generate(s)
		if err != nil {
			return nil, err
		}
		y, err := contracts.ToYAML(m.OpenAPI)
		if err != nil {
			return nil, err
		}
		files["contracts/openapi/"+s.Dir+".yaml"] = y
		if m.AsyncAPI != nil {
			if y, err = contracts.ToYAML(m.AsyncAPI); err != nil {
				return nil, err
			}
			files["contracts/asyncapi/"+s.Dir+".yaml"] = y
		}
	}
	return files, nil
}

// Catalog builds the event catalog of the AsyncAPI manifests among files.
func Catalog(files Files) (*catalog.Catalog, error) {
	var docs []catalog.Doc
	for _, p := range files.Paths() {
		if dir, ok := strings.CutPrefix(p, "contracts/asyncapi/"); ok {
			d, err := catalog.Parse(strings.TrimSuffix(dir, ".yaml"), files[p])
			if err != nil {
				return nil, err
			}
			docs = append(docs, d)
		}
	}
	return catalog.Build(eventbus.Exchange, docs)
}

// Lint runs the static checks on the manifests among files: each OpenAPI
// manifest (kin-openapi and the naming rules), each AsyncAPI manifest (the
// bindings and message rules), and the cross-checks of consumers against
// publishers.
func Lint(files Files) ([]lint.Finding, error) {
	var out []lint.Finding
	for _, p := range files.Paths() {
		switch {
		case strings.HasPrefix(p, "contracts/openapi/"):
			out = append(out, lint.OpenAPI(p, files[p])...)
		case strings.HasPrefix(p, "contracts/asyncapi/"):
			d, err := catalog.Parse(strings.TrimSuffix(path.Base(p), ".yaml"), files[p])
			if err != nil {
				return nil, err
			}
			out = append(out, lint.AsyncAPI(p, d)...)
		}
	}
	c, err := Catalog(files)
	if err != nil {
		return nil, err
	}
	out = append(out, lint.Platform(c, func(dir string) string { return "contracts/asyncapi/" + dir + ".yaml" })...)
	lint.Sort(out)
	return out, nil
}

// Drift compares files with the files under root: a generated file that
// differs or is missing, and a file in a generated directory that the
// generator no longer writes, are findings.
func Drift(root string, files Files) ([]lint.Finding, error) {
	var out []lint.Finding
	for _, p := range files.Paths() {
		have, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(p)))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			out = append(out, lint.Finding{File: p, Rule: "drift", Message: "not committed: run scripts/contracts and commit the result"})
		case err != nil:
			return nil, err
		case !bytes.Equal(have, files[p]):
			out = append(out, lint.Finding{File: p, Where: firstDifference(have, files[p]), Rule: "drift",
				Message: "differs from what the code generates: run scripts/contracts and commit the result (or revert the code change)"})
		}
	}
	stale, err := Stale(root, files)
	if err != nil {
		return nil, err
	}
	for _, p := range stale {
		out = append(out, lint.Finding{File: p, Rule: "drift", Message: "no longer generated (a service was removed or renamed): delete it"})
	}
	return out, nil
}

// Stale lists the files in generated directories under root that files
// does not contain.
func Stale(root string, files Files) ([]string, error) {
	var out []string
	for _, dir := range generatedDirs {
		entries, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(dir)))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			p := dir + "/" + e.Name()
			if _, ok := files[p]; !ok && !e.IsDir() {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// firstDifference names the first line where two texts differ.
func firstDifference(a, b []byte) string {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range max(len(al), len(bl)) {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d: committed %q, generated %q", i+1, clip(x), clip(y))
		}
	}
	return ""
}

func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// Write writes files under root and deletes stale generated files.
func Write(root string, files Files) error {
	for _, p := range files.Paths() {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, files[p], 0o644); err != nil {
			return err
		}
	}
	stale, err := Stale(root, files)
	if err != nil {
		return err
	}
	for _, p := range stale {
		if err := os.Remove(filepath.Join(root, filepath.FromSlash(p))); err != nil {
			return err
		}
	}
	return nil
}

// ErrNoGit is returned by Breaking when root is not a git work tree (a
// source tarball): there is no previous version to compare with.
var ErrNoGit = errors.New("not a git work tree: no committed contracts to compare with")

// Breaking compares the manifests among files with their versions in the
// git revision ref of the repository at root (typically HEAD: the last
// committed contracts) and lists the breaking changes. A manifest absent
// from ref is new and breaks nothing. It returns an error when root is not
// a git work tree.
func Breaking(root, ref string, files Files) ([]lint.Finding, error) {
	if err := exec.Command("git", "-C", root, "rev-parse", "--is-inside-work-tree").Run(); err != nil {
		return nil, ErrNoGit
	}
	var out []lint.Finding
	for _, p := range files.Paths() {
		if !strings.HasPrefix(p, "contracts/openapi/") && !strings.HasPrefix(p, "contracts/asyncapi/") {
			continue
		}
		old, err := gitShow(root, ref, p)
		if err != nil {
			return nil, err
		}
		if old == nil || bytes.Equal(old, files[p]) {
			continue
		}
		if strings.HasPrefix(p, "contracts/openapi/") {
			fs, err := lint.BreakingOpenAPI(p, old, files[p])
			if err != nil {
				return nil, err
			}
			out = append(out, fs...)
			continue
		}
		dir := strings.TrimSuffix(path.Base(p), ".yaml")
		o, err := catalog.Parse(dir, old)
		if err != nil {
			return nil, fmt.Errorf("%s at %s: %w", p, ref, err)
		}
		n, err := catalog.Parse(dir, files[p])
		if err != nil {
			return nil, err
		}
		out = append(out, lint.BreakingAsyncAPI(p, o, n)...)
	}
	return out, nil
}

// gitShow returns the content of p at ref, nil when p does not exist there.
func gitShow(root, ref, p string) ([]byte, error) {
	cmd := exec.Command("git", "-C", root, "cat-file", "-e", ref+":"+p)
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			// Absent at ref, or ref/root unusable: tell them apart.
			if err := exec.Command("git", "-C", root, "rev-parse", "--verify", "--quiet", ref+"^{commit}").Run(); err != nil {
				return nil, fmt.Errorf("git revision %q not found in %s", ref, root)
			}
			return nil, nil
		}
		return nil, fmt.Errorf("git: %w", err)
	}
	out, err := exec.Command("git", "-C", root, "show", ref+":"+p).Output()
	if err != nil {
		return nil, fmt.Errorf("git show %s:%s: %w", ref, p, err)
	}
	return out, nil
}

// Generate generates every file the contracts command commits for the
// repository at root: the manifests of every service of
// scripts/services.conf (Services: each service prints its own), and the
// documentation generated from them, docs/choreography.svg (the
// choreography map) and docs/events.md (the event catalog).
func Generate(root string) (Files, error) {
	printed, err := Services(root)
	if err != nil {
		return nil, err
	}
	files, err := Printed(printed)
	if err != nil {
		return nil, err
	}
	c, err := Catalog(files)
	if err != nil {
		return nil, err
	}
	files["docs/choreography.svg"] = portal.Map(c)
	files["docs/events.md"] = portal.EventsMarkdown(c)
	return files, nil
}
