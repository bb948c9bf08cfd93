package hal_test

import (
	"testing"

	"github.com/sagittarius-a/sagittarius/internal/hal"
)

func TestFindAndSearchable(t *testing.T) {
	l := hal.Find("http://gw/orders/v1/orders", "customer_id", "status", "page", "size")
	if l.Href != "http://gw/orders/v1/orders{?customer_id,status,page,size}" || !l.Templated {
		t.Fatalf("Find: %+v", l)
	}
	c := hal.NewCollection("orders", "http://gw/orders/v1/orders", nil, []int{1}, hal.Page{Number: 1, Size: 20}, 1).
		Searchable("http://gw/orders/v1", "orders", "http://gw/orders/v1/orders", "status")
	if c.Links.Href("up") != "http://gw/orders/v1" || c.Links.Href("find-orders") != "http://gw/orders/v1/orders{?status}" || c.Links.Href("self") == "" {
		t.Fatalf("Searchable: %+v", c.Links)
	}
}
