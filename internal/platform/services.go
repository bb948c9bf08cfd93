package platform

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Line is one line of scripts/services.conf, the one list of the services of
// Sagittarius.
type Line struct {
	Dir  string // services/<dir>; the gateway's prefix /<dir>/ and UPSTREAM_<DIR>
	Name string // queue, app_id, RabbitMQ user; "-" for a service without queue nor database (the gateway)
	Port int    // default port (scripts/up; <DIR>_PORT overrides it)
}

// HasQueue reports whether the service has a queue and a database: every
// service but the gateway.
func (l Line) HasQueue() bool { return l.Name != "-" }

// Database is the MySQL database and user of the service: its name with "."
// and "-" replaced by "_", or "" for a service without a queue.
func (l Line) Database() string {
	if !l.HasQueue() {
		return ""
	}
	return strings.NewReplacer(".", "_", "-", "_").Replace(l.Name)
}

// ReadServices reads scripts/services.conf under the repository root: one
// service a line, "dir name port"; blank lines and lines starting with # are
// skipped. A line without three fields or with a port that is not a number is
// an error, and so is a file listing no service or a dir twice.
func ReadServices(root string) ([]Line, error) {
	path := filepath.Join(root, "scripts", "services.conf")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Line
	seen := map[string]bool{}
	for i, text := range strings.Split(string(b), "\n") {
		f := strings.Fields(text)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("%s:%d: want \"dir name port\", got %q", path, i+1, strings.TrimSpace(text))
		}
		port, err := strconv.Atoi(f[2])
		if err != nil || port < 1 || port > 65535 {
			return nil, fmt.Errorf("%s:%d: port %q is not a port number", path, i+1, f[2])
		}
		if seen[f[0]] {
			return nil, fmt.Errorf("%s:%d: %s is listed twice", path, i+1, f[0])
		}
		seen[f[0]] = true
		out = append(out, Line{Dir: f[0], Name: f[1], Port: port})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s lists no services", path)
	}
	return out, nil
}
