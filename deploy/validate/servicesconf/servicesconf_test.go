package servicesconf

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	svcs, err := Parse(strings.NewReader("# comment\n\norders sales.orders 8083\ngateway - 8080\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs) != 2 || svcs[0] != (Service{"orders", "sales.orders", 8083}) || svcs[1] != (Service{"gateway", "", 8080}) {
		t.Fatalf("got %+v", svcs)
	}
	if got := svcs[0].PasswordVar(); got != "SALES_ORDERS_PASSWORD" {
		t.Errorf("PasswordVar = %s", got)
	}
	if svcs[1].HasBus() || !svcs[0].HasBus() {
		t.Error("HasBus: the gateway has no bus, orders has one")
	}
	for _, bad := range []string{"", "orders sales.orders\n", "orders sales.orders 80x\n",
		"a x.y 1\nb x.z 1\n", "a x.y 1\na x.z 2\n"} {
		if _, err := Parse(strings.NewReader(bad)); err == nil {
			t.Errorf("Parse(%q): nil error", bad)
		}
	}
}

func TestTheRepositorysFile(t *testing.T) {
	svcs, err := ReadFile("../../../scripts/services.conf")
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs) < 7 {
		t.Errorf("%d services, want at least 7", len(svcs))
	}
}
