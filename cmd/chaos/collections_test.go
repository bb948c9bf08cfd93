package main

import (
	"path/filepath"
	"testing"
)

func TestLoadCollections(t *testing.T) {
	root := filepath.Join("..", "..")
	got, err := loadCollections(root, []string{"catalog", "inventory", "orders"})
	if err != nil {
		t.Fatal(err)
	}
	// The first paginated collection in path order; /v1/contracts takes no size.
	want := map[string]string{"catalog": "/v1/products", "inventory": "/v1/replenishments", "orders": "/v1/orders"}
	for dir, p := range want {
		if got[dir] != p {
			t.Errorf("%s: %q, want %q", dir, got[dir], p)
		}
	}
	if _, err := loadCollections(root, []string{"gateway"}); err == nil {
		t.Error("the gateway has no paginated collection: want an error")
	}
	if _, err := loadCollections(root, []string{"nowhere"}); err == nil {
		t.Error("a service without a manifest: want an error")
	}
}
