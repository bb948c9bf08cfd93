package testinfra

import (
	"context"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
)

// NewDatabase creates a fresh, empty database with a random name on the shared
// MariaDB and returns a connection pool to it (as the admin user). The pool is
// closed and the database dropped in t.Cleanup.
func NewDatabase(t testing.TB) *sqlx.DB {
	t.Helper()
	return OpenDatabase(t, NewDatabaseDSN(t))
}

// NewDatabaseDSN creates a fresh, empty database like NewDatabase and returns
// its DSN (admin credentials, parseTime=true&loc=UTC) for code that opens its
// own pool, such as a service's run function. The database is dropped in
// t.Cleanup.
func NewDatabaseDSN(t testing.TB) string {
	t.Helper()
	env := RequireInfra(t)
	cfg, err := mysql.ParseDSN(env.MySQLDSN)
	if err != nil {
		t.Fatalf("%s: %v", EnvMySQLDSN, err)
	}
	admin := open(t, env.MySQLDSN)
	defer admin.Close()

	name := uniqueName(t, "test", "_", 64)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		db, err := sqlx.Open("mysql", env.MySQLDSN)
		if err != nil {
			t.Errorf("dropping database %s: %v", name, err)
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Errorf("dropping database %s: %v", name, err)
		}
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}

// OpenDatabase opens a pool on dsn, checks it answers, and closes it in
// t.Cleanup (before the database is dropped when the DSN came from
// NewDatabaseDSN in the same test).
func OpenDatabase(t testing.TB, dsn string) *sqlx.DB {
	t.Helper()
	db := open(t, dsn)
	t.Cleanup(func() { db.Close() })
	return db
}

func open(t testing.TB, dsn string) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open("mysql", dsn)
	if err != nil {
		t.Fatalf("opening MariaDB: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		t.Fatalf("MariaDB does not answer (is scripts/infra-up running?): %v", err)
	}
	return db
}
