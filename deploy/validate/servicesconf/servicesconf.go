// Package servicesconf reads scripts/services.conf, the table of the platform's
// services that scripts/up, docker-compose.yml, the Grafana dashboards and the
// Kubernetes manifests must all agree with.
package servicesconf

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Service is one line of services.conf.
type Service struct {
	Dir  string // folder under services/, also the Prometheus job and the Kubernetes name
	Name string // queue, app_id and RabbitMQ user; "" for the gateway (written "-")
	Port int    // HTTP port, where /health and /metrics are served
}

// HasBus reports whether the service has a queue and a database (the gateway has neither).
func (s Service) HasBus() bool { return s.Name != "" }

// DBName is the MySQL database and user of the service: its name with "." and
// "-" replaced by "_" (sales.orders -> sales_orders).
func (s Service) DBName() string { return strings.NewReplacer(".", "_", "-", "_").Replace(s.Name) }

// PasswordVar is the variable (and Secret key) holding the service's password:
// its name upper-cased with "." and "-" replaced by "_", plus _PASSWORD
// (sales.orders -> SALES_ORDERS_PASSWORD).
func (s Service) PasswordVar() string {
	return strings.ToUpper(s.DBName()) + "_PASSWORD"
}

// ReadFile parses the services.conf at path.
func ReadFile(path string) ([]Service, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	svcs, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return svcs, nil
}

// Parse reads services.conf lines "dir name port", skipping blank lines and
// # comments. It returns an error for a malformed line, a duplicate dir or
// port, or an empty table.
func Parse(r io.Reader) ([]Service, error) {
	var svcs []Service
	dirs, ports := map[string]bool{}, map[int]bool{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: want dir, name and port, got %q", n, line)
		}
		port, err := strconv.Atoi(f[2])
		if err != nil || port < 1 || port > 65535 {
			return nil, fmt.Errorf("line %d: port %q", n, f[2])
		}
		s := Service{Dir: f[0], Name: f[1], Port: port}
		if s.Name == "-" {
			s.Name = ""
		}
		if dirs[s.Dir] || ports[s.Port] {
			return nil, fmt.Errorf("line %d: dir %s or port %d listed twice", n, s.Dir, s.Port)
		}
		dirs[s.Dir], ports[s.Port] = true, true
		svcs = append(svcs, s)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(svcs) == 0 {
		return nil, fmt.Errorf("no service listed")
	}
	return svcs, nil
}
