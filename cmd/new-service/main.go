// Command new-service generates a Sagittarius service that is correct on day
// one (scripts/new-service wraps it and generates the manifests):
//
//	go run ./cmd/new-service domain-name.subdomain-name [--dir DIR] [--port N] [--root ROOT]
//
// The name is checked by the bus's rules (eventbus.ValidateServiceName). DIR
// (default: the subdomain) is services/<DIR>, the gateway prefix /<DIR> and
// the manifests' name; N (default: the next port after the highest one of
// scripts/services.conf) its default HTTP port. It writes, from the template
// embedded in this command (template/, text/template):
//
//   - services/<DIR>: main.go on the service kit, its events package with one
//     example event (<entity>_created), embedded goose migrations with its
//     first table, a store whose methods are one transaction each and enqueue
//     their events (eventbus.Emit), a HAL collection/item resource (list with
//     paging, get, create) with its problem mapping, a handler of its own
//     example event through the inbox (eventbus.HandleTx), and tests against
//     the real broker and database (servicetest.Start, testinfra);
//   - its line in scripts/services.conf (before the gateway's);
//   - its compose service in docker-compose.yml, its password, the gateway's
//     UPSTREAMS entry, UPSTREAM_<DIR> and depends_on;
//   - what deploy/ needs for the new line (addDeploy): its Kubernetes
//     manifests and their references, the copy of services.conf under
//     deploy/k8s/base, its Prometheus scrape job. The Grafana dashboards are
//     generated from services.conf by deploy/validate (scripts/new-service
//     runs it).
//
// It refuses to overwrite anything: an existing directory, a line of
// services.conf with the same dir, name or port, or a compose service,
// password, upstream, manifest or scrape job of that name stop it before it
// writes a byte.
package main

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"go/format"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"unicode"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/platform"
)

//go:embed template
var templates embed.FS

// Module is the Go module of the generated code.
const Module = "github.com/sagittarius-a/sagittarius"

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "new-service:", err)
		os.Exit(1)
	}
}

const usage = "usage: new-service domain-name.subdomain-name [--dir DIR] [--port N] [--root ROOT]"

// options are the parsed arguments.
type options struct {
	name, dir, root string
	port            int
}

// parseArgs accepts the name and the flags in any order, as --flag value or --flag=value.
func parseArgs(args []string) (options, error) {
	o := options{root: "."}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			if o.name != "" {
				return o, fmt.Errorf("one service name, got %q and %q\n%s", o.name, a, usage)
			}
			o.name = a
			continue
		}
		key, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if key == "h" || key == "help" {
			return o, errors.New(usage)
		}
		if !hasVal {
			if i+1 >= len(args) {
				return o, fmt.Errorf("--%s needs a value\n%s", key, usage)
			}
			i++
			val = args[i]
		}
		switch key {
		case "dir":
			o.dir = val
		case "root":
			o.root = val
		case "port":
			p, err := strconv.Atoi(val)
			if err != nil || p < 1024 || p > 65535 {
				return o, fmt.Errorf("--port %q: want a port number from 1024 to 65535", val)
			}
			o.port = p
		default:
			return o, fmt.Errorf("unknown flag --%s\n%s", key, usage)
		}
	}
	if o.name == "" {
		return o, errors.New(usage)
	}
	return o, nil
}

func run(args []string, stdout io.Writer) error {
	o, err := parseArgs(args)
	if err != nil {
		return err
	}
	if err := eventbus.ValidateServiceName(o.name); err != nil {
		return err
	}
	_, sub, _ := strings.Cut(o.name, ".")
	if o.dir == "" {
		o.dir = sub
	}
	if !dirRE.MatchString(o.dir) {
		return fmt.Errorf("--dir %q: want lowercase words joined by dashes (it is a directory, a URL prefix and UPSTREAM_<DIR>)", o.dir)
	}
	lines, err := platform.ReadServices(o.root)
	if err != nil {
		return err
	}
	if o.port == 0 {
		o.port = nextPort(lines)
	}
	d, err := newData(o.name, o.dir, o.port)
	if err != nil {
		return err
	}
	files, err := render(d)
	if err != nil {
		return err
	}
	conf, err := addConfLine(o.root, lines, d)
	if err != nil {
		return err
	}
	compose, err := addComposeService(o.root, d)
	if err != nil {
		return err
	}
	deploy, err := addDeploy(o.root, d, conf)
	if err != nil {
		return err
	}
	svcDir := filepath.Join(o.root, "services", d.Dir)
	if _, err := os.Lstat(svcDir); err == nil {
		return fmt.Errorf("services/%s already exists: refusing to overwrite it (choose another name or --dir)", d.Dir)
	}
	// Every check passed: write.
	for _, f := range files {
		path := filepath.Join(svcDir, f.path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, f.body, 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(o.root, "scripts", "services.conf"), conf, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.root, "docker-compose.yml"), compose, 0o644); err != nil {
		return err
	}
	for _, e := range deploy {
		if err := os.WriteFile(filepath.Join(o.root, e.path), e.body, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "new-service: %s in services/%s (%d files), port %d, gateway prefix /%s, database %s\n",
		d.Name, d.Dir, len(files), d.Port, d.Dir, d.Database)
	fmt.Fprintf(stdout, "new-service: added its line to scripts/services.conf and its service to docker-compose.yml\n")
	fmt.Fprintf(stdout, "new-service: deploy/: its Kubernetes manifests (%s/services/%s.yaml, the kustomizations, services.conf, the gateway's upstreams, its password), its Prometheus scrape job\n", k8sBase, d.Dir)
	return nil
}

var dirRE = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

// nextPort returns the port after the highest one of lines.
func nextPort(lines []platform.Line) int {
	max := 8080
	for _, l := range lines {
		if l.Port > max {
			max = l.Port
		}
	}
	return max + 1
}

// data is what the templates see.
type data struct {
	Module   string
	Name     string // acme.email-widgets
	Dir      string // email-widgets
	Port     int    // 8087
	Database string // acme_email_widgets
	Env      string // ACME_EMAIL_WIDGETS (its password variable's prefix)
	Upstream string // UPSTREAM_EMAIL_WIDGETS
	Pkg      string // emailwidget: the domain package
	Events   string // emailwidgetevents: the events package
	Type     string // EmailWidget: the Go type
	Snake    string // email_widget: event names and the entity key
	Table    string // email_widgets
	Singular string // email-widget: link relation of one item
	Plural   string // email-widgets: the collection's path and relation
	Human    string // email widget
	HumanPl  string // email widgets
}

func newData(name, dir string, port int) (data, error) {
	_, sub, _ := strings.Cut(name, ".")
	words := strings.Split(sub, "-")
	last := singular(words[len(words)-1])
	sing := append(append([]string(nil), words[:len(words)-1]...), last)
	plur := append(append([]string(nil), words[:len(words)-1]...), plural(last))
	d := data{
		Module: Module, Name: name, Dir: dir, Port: port,
		Database: strings.NewReplacer(".", "_", "-", "_").Replace(name),
		Env:      strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(name)),
		Upstream: "UPSTREAM_" + strings.ToUpper(strings.ReplaceAll(dir, "-", "_")),
		Pkg:      strings.Join(sing, ""),
		Snake:    strings.Join(sing, "_"),
		Table:    strings.Join(plur, "_"),
		Singular: strings.Join(sing, "-"),
		Plural:   strings.Join(plur, "-"),
		Human:    strings.Join(sing, " "),
		HumanPl:  strings.Join(plur, " "),
	}
	for _, w := range sing {
		r := []rune(w)
		d.Type += string(unicode.ToUpper(r[0])) + string(r[1:])
	}
	d.Events = d.Pkg + "events"
	if !regexp.MustCompile(`^[a-z][a-z0-9]*$`).MatchString(d.Pkg) || d.Pkg[0] >= '0' && d.Pkg[0] <= '9' {
		return d, fmt.Errorf("cannot derive a Go package name from %q", sub)
	}
	switch d.Pkg {
	case "main", "mysql", "httpapi", "eventapi", "events":
		return d, fmt.Errorf("the entity %q of %s would clash with the package %s of every service: choose another subdomain", d.Pkg, name, d.Pkg)
	}
	if err := eventbus.ValidateEventName(d.Snake + "_created"); err != nil {
		return d, err
	}
	return d, nil
}

// singular is a plain English singular, enough for names of entities.
func singular(w string) string {
	switch {
	case strings.HasSuffix(w, "ies") && len(w) > 3:
		return w[:len(w)-3] + "y"
	case strings.HasSuffix(w, "sses"), strings.HasSuffix(w, "xes"), strings.HasSuffix(w, "ches"), strings.HasSuffix(w, "shes"):
		return w[:len(w)-2]
	case strings.HasSuffix(w, "ss"), strings.HasSuffix(w, "us"), strings.HasSuffix(w, "is"):
		return w
	case strings.HasSuffix(w, "s") && len(w) > 1:
		return w[:len(w)-1]
	}
	return w
}

// plural is a plain English plural.
func plural(w string) string {
	switch {
	case strings.HasSuffix(w, "y") && len(w) > 1 && !strings.ContainsRune("aeiou", rune(w[len(w)-2])):
		return w[:len(w)-1] + "ies"
	case strings.HasSuffix(w, "s"), strings.HasSuffix(w, "x"), strings.HasSuffix(w, "ch"), strings.HasSuffix(w, "sh"):
		return w + "es"
	}
	return w + "s"
}

type file struct {
	path string // under services/<dir>
	body []byte
}

// render executes every template; Go files are gofmt-formatted.
func render(d data) ([]file, error) {
	var out []file
	paths := strings.NewReplacer("ENTITY", d.Pkg, "TABLE", d.Table)
	err := fs.WalkDir(templates, "template", func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		src, err := templates.ReadFile(path)
		if err != nil {
			return err
		}
		t, err := template.New(path).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := t.Execute(&b, d); err != nil {
			return err
		}
		rel := paths.Replace(strings.TrimSuffix(strings.TrimPrefix(path, "template/"), ".tmpl"))
		body := b.Bytes()
		if strings.HasSuffix(rel, ".go") {
			if body, err = format.Source(body); err != nil {
				return fmt.Errorf("template %s: %w", path, err)
			}
		}
		out = append(out, file{rel, body})
		return nil
	})
	return out, err
}

// addConfLine returns scripts/services.conf with the service's line before
// the gateway's (or at the end), or an error when its dir, name or port is
// taken.
func addConfLine(root string, lines []platform.Line, d data) ([]byte, error) {
	for _, l := range lines {
		switch {
		case l.Dir == d.Dir:
			return nil, fmt.Errorf("scripts/services.conf already has a service in %s (%s): refusing to overwrite it", l.Dir, l.Name)
		case l.Name == d.Name:
			return nil, fmt.Errorf("scripts/services.conf already lists %s (in %s): refusing to overwrite it", l.Name, l.Dir)
		case l.Port == d.Port:
			return nil, fmt.Errorf("port %d is %s's in scripts/services.conf: choose another with --port", d.Port, l.Dir)
		}
	}
	b, err := os.ReadFile(filepath.Join(root, "scripts", "services.conf"))
	if err != nil {
		return nil, err
	}
	line := fmt.Sprintf("%-11s %-21s %d\n", d.Dir, d.Name, d.Port)
	text := string(b)
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	if m := regexp.MustCompile(`(?m)^\S+\s+-\s+\d+\s*$`).FindStringIndex(text); m != nil {
		return []byte(text[:m[0]] + line + text[m[0]:]), nil
	}
	return []byte(text + line), nil
}

// addComposeService returns docker-compose.yml with the service's password
// (x-passwords), its service (before the gateway) in the style of the others
// (the one image's /usr/local/bin/<dir>, the shared environment, the three
// AMQP nodes of the cluster profile, its OTEL_SERVICE_NAME, the httpcheck
// healthcheck), the gateway's UPSTREAMS entry, UPSTREAM_<DIR> and depends_on;
// or an error when any of them exists.
func addComposeService(root string, d data) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(b), "\n")
	password := d.Env + "_PASSWORD"
	for _, l := range lines {
		switch {
		case l == "  "+d.Dir+":":
			return nil, fmt.Errorf("docker-compose.yml already has a service %s: refusing to overwrite it", d.Dir)
		case strings.HasPrefix(strings.TrimSpace(l), password+":"):
			return nil, fmt.Errorf("docker-compose.yml already has %s: refusing to overwrite it", password)
		case strings.HasPrefix(strings.TrimSpace(l), d.Upstream+":"):
			return nil, fmt.Errorf("docker-compose.yml: the gateway already has %s: refusing to overwrite it", d.Upstream)
		}
	}
	dashed := strings.NewReplacer(".", "-", "_", "-").Replace(d.Name)
	pw := fmt.Sprintf("${%s:-%s-dev}", password, dashed)
	var nodes []string
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, fmt.Sprintf("amqp://%s:%s@${AMQP_HOST_%d:-rabbitmq}:5672/sagittarius", d.Name, pw, i))
	}
	block := fmt.Sprintf(`  %[1]s:
    <<: *service
    command: ["/usr/local/bin/%[1]s"]
    environment:
      <<: *service-env
      HTTP_ADDR: 0.0.0.0:%[2]d
      # The three nodes of the cluster profile; without it, three times the one node.
      AMQP_URL: "%[3]s"
      MYSQL_DSN: "%[5]s:%[4]s@tcp(mysql:3306)/%[5]s?parseTime=true&loc=UTC"
      OTEL_SERVICE_NAME: %[6]s
    healthcheck:
      test: ["CMD", "/usr/local/bin/httpcheck", "http://127.0.0.1:%[2]d/health"]
      interval: 5s
      timeout: 5s
      retries: 24
`, d.Dir, d.Port, strings.Join(nodes, ","), pw, d.Database, d.Name)

	var out []string
	section, inGateway, inPasswords := "", false, false
	lastPassword, gatewayAt, lastUpstream, lastDepends, upstreams := -1, -1, -1, -1, -1
	for i, l := range lines {
		if strings.HasPrefix(l, "x-passwords:") {
			inPasswords = true
		} else if inPasswords && (l == "" || !strings.HasPrefix(l, " ")) {
			inPasswords = false
		}
		if inPasswords && strings.HasPrefix(l, "  ") {
			lastPassword = i
		}
		if l == "  gateway:" {
			gatewayAt, inGateway = i, true
		} else if inGateway && strings.HasPrefix(l, "  ") && !strings.HasPrefix(l, "   ") {
			inGateway = false
		} else if inGateway && !strings.HasPrefix(l, " ") && l != "" {
			inGateway = false
		}
		if inGateway {
			t := strings.TrimSpace(l)
			if strings.HasPrefix(l, "    ") && !strings.HasPrefix(l, "     ") {
				section = strings.TrimSuffix(t, ":")
			}
			if section == "environment" && strings.HasPrefix(t, "UPSTREAM_") {
				lastUpstream = i
			}
			if section == "environment" && strings.HasPrefix(t, `UPSTREAMS: "`) && strings.HasSuffix(t, `"`) {
				upstreams = i
			}
			if section == "depends_on" && strings.HasSuffix(t, "{condition: service_healthy}") {
				lastDepends = i
			}
		}
	}
	if lastPassword < 0 || gatewayAt < 0 || lastUpstream < 0 || lastDepends < 0 || upstreams < 0 {
		return nil, errors.New("docker-compose.yml: cannot find x-passwords, the gateway service, its UPSTREAMS and UPSTREAM_ variables or its depends_on")
	}
	upstream := fmt.Sprintf("%s %s http://%s:%d", d.Dir, d.Name, d.Dir, d.Port)
	for _, u := range strings.Split(strings.Trim(strings.TrimPrefix(strings.TrimSpace(lines[upstreams]), "UPSTREAMS:"), ` "`), ",") {
		if f := strings.Fields(u); len(f) == 3 && (f[0] == d.Dir || f[1] == d.Name) {
			return nil, fmt.Errorf("docker-compose.yml: the gateway's UPSTREAMS already routes %q: refusing to overwrite it", u)
		}
	}
	for i, l := range lines {
		if i == gatewayAt {
			out = append(out, strings.Split(block, "\n")...)
		}
		if i == upstreams {
			l = strings.TrimSuffix(l, `"`) + "," + upstream + `"`
		}
		out = append(out, l)
		switch i {
		case lastPassword:
			out = append(out, fmt.Sprintf("  %s: %s", password, pw))
		case lastUpstream:
			out = append(out, fmt.Sprintf("      %s: http://%s:%d", d.Upstream, d.Dir, d.Port))
		case lastDepends:
			out = append(out, fmt.Sprintf("      %s: {condition: service_healthy}", d.Dir))
		}
	}
	return []byte(strings.Join(out, "\n")), nil
}
