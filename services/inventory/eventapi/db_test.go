package eventapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	invmysql "github.com/sagittarius-a/sagittarius/services/inventory/mysql"
)

// newTestDB returns a migrated database of its own on the MariaDB of SAGITTARIUS_TEST_MYSQL_DSN
// (an admin DSN without database), dropped when the test ends. Without that variable the test is
// skipped, unless SAGITTARIUS_REQUIRE_INFRA=1.
func newTestDB(t testing.TB) *sqlx.DB {
	t.Helper()
	dsn := os.Getenv("SAGITTARIUS_TEST_MYSQL_DSN")
	if dsn == "" {
		if os.Getenv("SAGITTARIUS_REQUIRE_INFRA") == "1" {
			t.Fatal("SAGITTARIUS_TEST_MYSQL_DSN is not set")
		}
		t.Skip("SAGITTARIUS_TEST_MYSQL_DSN is not set")
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "test_inventory_ev_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := sqlx.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec("DROP DATABASE IF EXISTS `" + name + "`") })
	cfg.DBName = name
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	db, err := sqlx.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(40)
	t.Cleanup(func() { db.Close() })
	if err := invmysql.Migrate(ctx, db, nil); err != nil {
		t.Fatal(err)
	}
	return db
}
