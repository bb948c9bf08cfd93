package services_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sagittarius-a/sagittarius/internal/platform"
)

// TestServicesConfLinesHaveTheirManifests fails when a line of
// scripts/services.conf lacks its OpenAPI manifest, or (for a service with a
// queue) its AsyncAPI manifest, and when a committed manifest belongs to no line.
func TestServicesConfLinesHaveTheirManifests(t *testing.T) {
	lines, err := platform.ReadServices("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"openapi", "asyncapi"} {
		want := map[string]bool{}
		for _, l := range lines {
			if kind == "asyncapi" && !l.HasQueue() {
				continue
			}
			want[l.Dir] = true
			if _, err := os.Stat(filepath.Join("..", "contracts", kind, l.Dir+".yaml")); err != nil {
				t.Errorf("%s (%s) has no %s manifest contracts/%s/%s.yaml: run scripts/contracts", l.Dir, l.Name, kind, kind, l.Dir)
			}
		}
		files, err := filepath.Glob(filepath.Join("..", "contracts", kind, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if dir := strings.TrimSuffix(filepath.Base(f), ".yaml"); !want[dir] {
				t.Errorf("contracts/%s/%s.yaml belongs to no line of scripts/services.conf", kind, dir)
			}
		}
	}
}

// composeFile is what this test reads of docker-compose.yml.
type composeFile struct {
	Services map[string]struct {
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		DependsOn   any               `yaml:"depends_on"` // a list of names, or a map of name to condition
	} `yaml:"services"`
}

// TestServicesConfLinesHaveTheirComposeService fails when a line of
// scripts/services.conf has no service in docker-compose.yml running
// the image's /usr/local/bin/<dir>, connecting as its own RabbitMQ and MySQL users, and (for a
// service with a queue) routed to by the gateway's UPSTREAM_<DIR>.
func TestServicesConfLinesHaveTheirComposeService(t *testing.T) {
	lines, err := platform.ReadServices("..")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	gw, ok := c.Services["gateway"]
	if !ok {
		t.Fatal("docker-compose.yml has no gateway")
	}
	for _, l := range lines {
		s, ok := c.Services[l.Dir]
		if !ok {
			t.Errorf("docker-compose.yml has no service %s (a line of scripts/services.conf)", l.Dir)
			continue
		}
		// One image holds every service (Dockerfile); the command names the binary.
		if want := "/usr/local/bin/" + l.Dir; len(s.Command) == 0 || s.Command[0] != want {
			t.Errorf("docker-compose.yml: service %s runs %q, want %s", l.Dir, s.Command, want)
		}
		if !l.HasQueue() {
			continue
		}
		if u := s.Environment["AMQP_URL"]; !strings.HasPrefix(u, "amqp://"+l.Name+":") {
			t.Errorf("docker-compose.yml: %s connects to RabbitMQ as %q, want its own user %s", l.Dir, u, l.Name)
		}
		if dsn := s.Environment["MYSQL_DSN"]; !strings.HasPrefix(dsn, l.Database()+":") || !strings.Contains(dsn, "/"+l.Database()+"?") {
			t.Errorf("docker-compose.yml: %s's MYSQL_DSN %q: want user and database %s", l.Dir, dsn, l.Database())
		}
		upstream := "UPSTREAM_" + strings.ToUpper(strings.ReplaceAll(l.Dir, "-", "_"))
		if !strings.HasPrefix(gw.Environment[upstream], "http://"+l.Dir+":") {
			t.Errorf("docker-compose.yml: the gateway's %s is %q, want http://%s:<port>", upstream, gw.Environment[upstream], l.Dir)
		}
		if !dependsOn(gw.DependsOn, l.Dir) {
			t.Errorf("docker-compose.yml: the gateway does not depend on %s", l.Dir)
		}
	}
}

// dependsOn reports whether a compose depends_on (a list of names or a map
// keyed by name) names service.
func dependsOn(deps any, service string) bool {
	switch d := deps.(type) {
	case map[string]any:
		_, ok := d[service]
		return ok
	case []any:
		for _, v := range d {
			if v == service {
				return true
			}
		}
	}
	return false
}
