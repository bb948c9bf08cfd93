package platform

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeConf(t *testing.T, conf string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "scripts", "services.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestReadServices(t *testing.T) {
	got, err := ReadServices(writeConf(t, "# comment\n\n  # indented comment\norders   sales.orders   8083\ngateway  -   8080\n"))
	want := []Line{{"orders", "sales.orders", 8083}, {"gateway", "-", 8080}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ReadServices = %v, %v; want %v", got, err, want)
	}
	if got[0].Database() != "sales_orders" || !got[0].HasQueue() || got[1].Database() != "" || got[1].HasQueue() {
		t.Errorf("Database/HasQueue: %q %v %q %v", got[0].Database(), got[0].HasQueue(), got[1].Database(), got[1].HasQueue())
	}
	for conf, wantErr := range map[string]string{
		"# nothing\n":                                 "lists no services",
		"orders sales.orders\n":                       `want "dir name port"`,
		"orders sales.orders 80x3\n":                  "not a port number",
		"orders sales.orders 8083\norders x.y 8084\n": "listed twice",
		"orders sales.orders 8083 extra\n":            `want "dir name port"`,
	} {
		if _, err := ReadServices(writeConf(t, conf)); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("ReadServices(%q) = %v, want an error with %q", conf, err, wantErr)
		}
	}
}

// TestRepositoryServices reads the repository's own list.
func TestRepositoryServices(t *testing.T) {
	lines, err := ReadServices(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	gateways := 0
	for _, l := range lines {
		if !l.HasQueue() {
			gateways++
		}
	}
	if gateways != 1 || len(lines) < 2 {
		t.Errorf("services.conf: %d lines, %d without a queue; want one gateway and services", len(lines), gateways)
	}
}
