package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sagittarius-a/sagittarius/internal/platform"
)

// newRoot returns a folder holding a copy of the repository's
// scripts/services.conf and docker-compose.yml.
func newRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, f := range []string{"scripts/services.conf", "docker-compose.yml"} {
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
