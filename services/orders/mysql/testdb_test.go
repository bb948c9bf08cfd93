package mysql

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
)

// testDB returns a fresh, empty database on the test MariaDB
// (SAGITTARIUS_TEST_MYSQL_DSN), dropped when the test ends. Without that
// variable the test is skipped, or fails when SAGITTARIUS_REQUIRE_INFRA=1.
func testDB(t *testing.T) *sqlx.DB {
	t.Helper()
	dsn := os.Getenv("SAGITTARIUS_TEST_MYSQL_DSN")
	if dsn == "" {
		if os.Getenv("SAGITTARIUS_REQUIRE_INFRA") == "1" {
			t.Fatal("SAGITTARIUS_TEST_MYSQL_DSN is not set and SAGITTARIUS_REQUIRE_INFRA=1")
		}
		t.Skip("SAGITTARIUS_TEST_MYSQL_DSN not set: run through scripts/test")
	}
	ctx := context.Background()
	admin, err := mysqldb.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "test_orders_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE `"+name+"`"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.ExecContext(context.Background(), "DROP DATABASE `"+name+"`") })
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DBName = name
	db, err := mysqldb.Open(ctx, cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
