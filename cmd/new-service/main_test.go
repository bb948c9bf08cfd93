package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"

	"github.com/sagittarius-a/sagittarius/internal/platform"
)

// newRoot returns a folder holding a copy of the repository's
// scripts/services.conf, docker-compose.yml and the files of deploy/ that
// addDeploy edits.
func newRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, f := range []string{"scripts/services.conf", "docker-compose.yml", k8sKustomization, k8sServicesConf,
		k8sGateway, k8sMySQL, k8sProvision, k8sDevOverlay, k8sDevSecrets, k8sProdSecrets, prometheusConfig} {
		b, err := os.ReadFile(filepath.Join("..", "..", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestGeneratesAndRefusesToOverwrite(t *testing.T) {
	root := newRoot(t)
	var out bytes.Buffer
	if err := run([]string{"acme.widgets", "--root", root}, &out); err != nil {
		t.Fatal(err)
	}
	lines, err := platform.ReadServices(root)
	if err != nil {
		t.Fatal(err)
	}
	var got platform.Line
	for _, l := range lines {
		if l.Dir == "widgets" {
			got = l
		}
	}
	if got.Name != "acme.widgets" || got.Port != nextPort(lines[:len(lines)-2]) || lines[len(lines)-1].Name != "-" {
		t.Fatalf("services.conf: %+v (want acme.widgets on the next port, before the gateway)", lines)
	}
	for _, f := range []string{"main.go", "main_test.go", "widgetevents/widgetevents.go", "widget/widget.go",
		"mysql/store.go", "mysql/migrations/00001_create_widgets.sql", "httpapi/httpapi.go", "eventapi/eventapi.go"} {
		if _, err := os.Stat(filepath.Join(root, "services", "widgets", f)); err != nil {
			t.Errorf("not generated: %v", err)
		}
	}
	compose, _ := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	for _, want := range []string{"\n  widgets:\n", "ACME_WIDGETS_PASSWORD: ${ACME_WIDGETS_PASSWORD:-acme-widgets-dev}",
		"UPSTREAM_WIDGETS: http://widgets:", "      widgets: {condition: service_healthy}",
		`    command: ["/usr/local/bin/widgets"]`, "      <<: *service-env\n", "OTEL_SERVICE_NAME: acme.widgets\n",
		"@${AMQP_HOST_3:-rabbitmq}:5672/sagittarius\"", `"/usr/local/bin/httpcheck", "http://127.0.0.1:`,
		",widgets acme.widgets http://widgets:"} {
		if !strings.Contains(string(compose), want) {
			t.Errorf("docker-compose.yml lacks %q", want)
		}
	}

	for f, wants := range map[string][]string{
		"deploy/k8s/base/services/widgets.yaml": {"  name: widgets\n", `command: ["/usr/local/bin/widgets"]`,
			"containerPort: " + strconv.Itoa(got.Port), "key: ACME_WIDGETS_PASSWORD", "amqp://acme.widgets:$(SERVICE_PASSWORD)@",
			"acme_widgets:$(SERVICE_PASSWORD)@tcp(mysql:3306)/acme_widgets?"},
		k8sKustomization: {"  - services/widgets.yaml\n  - services/gateway.yaml\n"},
		k8sServicesConf:  {"\nwidgets     acme.widgets          " + strconv.Itoa(got.Port) + "\n"},
		k8sGateway: {fmt.Sprintf(",widgets acme.widgets http://widgets:%d\"\n", got.Port),
			fmt.Sprintf("- name: UPSTREAM_WIDGETS\n              value: \"http://widgets:%d\"\n", got.Port)},
		k8sMySQL:         {"- name: ACME_WIDGETS_PASSWORD\n              valueFrom:\n                secretKeyRef:\n                  name: sagittarius-passwords\n                  key: ACME_WIDGETS_PASSWORD\n"},
		k8sProvision:     {"key: ACME_WIDGETS_PASSWORD\n"},
		k8sDevOverlay:    {"  - {name: widgets, count: 1}\n  - {name: gateway, count: 1}\n"},
		k8sDevSecrets:    {"\nACME_WIDGETS_PASSWORD=acme-widgets-dev\n"},
		k8sProdSecrets:   {"\nACME_WIDGETS_PASSWORD=CHANGE-ME\n"},
		prometheusConfig: {fmt.Sprintf("  - job_name: widgets\n    static_configs:\n      - targets: [\"widgets:%d\"]\n\n  - job_name: gateway\n", got.Port)},
	} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Error(err)
			continue
		}
		for _, want := range wants {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s lacks %q", f, want)
			}
		}
	}

	before := snapshot(t, root)
	for _, args := range [][]string{
		{"acme.widgets"},                     // the same again
		{"acme.gadgets", "--dir", "widgets"}, // another name in the same dir
		{"acme.gizmos", "--port", "8081"},    // a port taken
		{"acme.Gizmos"},                      // the bus's rules
		{"acme.gizmo-queue"},
		{"acme"},
	} {
		if err := run(append(args, "--root", root), &out); err == nil {
			t.Errorf("%v: no error", args)
		} else {
			t.Logf("%v: %v", args, err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "services", "gizmos"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"acme.gizmos", "--root", root}, &out); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("an existing services/gizmos: %v", err)
	}
	os.Remove(filepath.Join(root, "services", "gizmos"))
	manifest := filepath.Join(root, "deploy/k8s/base/services/gizmos.yaml")
	if err := os.WriteFile(manifest, []byte("kind: Deployment\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"acme.gizmos", "--root", root}, &out); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("an existing deploy/k8s/base/services/gizmos.yaml: %v", err)
	}
	os.Remove(manifest)
	if after := snapshot(t, root); after != before {
		t.Error("a refused run changed the tree")
	}
}

// snapshot is every file under root, names and contents.
func snapshot(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		body, err := os.ReadFile(path)
		b.WriteString(path + "\n" + string(body))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestNames(t *testing.T) {
	for _, c := range []struct{ name, pkg, typ, plural, table, snake string }{
		{"acme.widgets", "widget", "Widget", "widgets", "widgets", "widget"},
		{"crm.notifications", "notification", "Notification", "notifications", "notifications", "notification"},
		{"sales.email-accounts", "emailaccount", "EmailAccount", "email-accounts", "email_accounts", "email_account"},
		{"logistics.inventory", "inventory", "Inventory", "inventories", "inventories", "inventory"},
		{"finance.taxes", "tax", "Tax", "taxes", "taxes", "tax"},
	} {
		d, err := newData(c.name, "x", 9000)
		if err != nil {
			t.Fatal(err)
		}
		if d.Pkg != c.pkg || d.Type != c.typ || d.Plural != c.plural || d.Table != c.table || d.Snake != c.snake || d.Events != c.pkg+"events" {
			t.Errorf("%s: %+v", c.name, d)
		}
	}
	if _, err := newData("acme.mysql", "mysql", 9000); err == nil {
		t.Error("acme.mysql: no error for an entity that clashes with the adapter package")
	}
}

// TestK8sTemplateIsTheOtherServicesManifest fails when the manifest the
// generator writes drifts from the services' own: rendered for every line of
// services.conf whose manifest is the common one, it is that manifest.
func TestK8sTemplateIsTheOtherServicesManifest(t *testing.T) {
	lines, err := platform.ReadServices(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	// Services whose manifest adds to the common one on purpose: identity
	// mounts its secrets, journeys links its traces (TRACE_UI_URL).
	own := map[string]bool{"identity": true, "journeys": true}
	for _, l := range lines {
		if !l.HasQueue() || own[l.Dir] {
			continue
		}
		d, err := newData(l.Name, l.Dir, l.Port)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := template.Must(template.New("k8s").Option("missingkey=error").Parse(k8sService)).Execute(&b, d); err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("..", "..", k8sBase, "services", l.Dir+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if b.String() != string(want) {
			t.Errorf("%s: the generator's manifest differs from %s/services/%s.yaml: change cmd/new-service/k8s-service.yaml.tmpl with it", l.Dir, k8sBase, l.Dir)
		}
	}
}
