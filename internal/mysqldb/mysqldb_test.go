package mysqldb_test

import (
	"context"
	"errors"
	"testing"
	"testing/fstest"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

func TestOpenMigrateAndDuplicates(t *testing.T) {
	dsn := testinfra.NewDatabaseDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := mysqldb.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	migrations := fstest.MapFS{
		"00001_things.sql": {Data: []byte("-- +goose Up\nCREATE TABLE things (id INT PRIMARY KEY, name VARCHAR(10) NOT NULL, UNIQUE KEY things_name (name));\n-- +goose Down\nDROP TABLE things;\n")},
		"00002_seed.sql":   {Data: []byte("-- +goose Up\nINSERT INTO things VALUES (1, 'one');\n-- +goose Down\nDELETE FROM things;\n")},
	}
	for range 2 { // the second run finds nothing to do
		if err := mysqldb.Migrate(ctx, db, migrations, nil); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := db.GetContext(ctx, &n, `SELECT COUNT(*) FROM things`); err != nil || n != 1 {
		t.Fatalf("things: %d rows, %v", n, err)
	}
	_, err = db.ExecContext(ctx, `INSERT INTO things VALUES (2, 'one')`)
	if !mysqldb.IsDuplicate(err) {
		t.Fatalf("IsDuplicate(%v) = false", err)
	}
	if mysqldb.IsDuplicate(errors.New("other")) || mysqldb.IsDuplicate(nil) {
		t.Fatal("IsDuplicate of a non-MySQL error")
	}
	var when time.Time // parseTime and UTC are forced by Open
	if err := db.GetContext(ctx, &when, `SELECT UTC_TIMESTAMP(6)`); err != nil || when.Location() != time.UTC {
		t.Fatalf("time %v (%v), want UTC", when, err)
	}
	bad := fstest.MapFS{"00003_bad.sql": {Data: []byte("-- +goose Up\nCREATE TABLE;\n")}}
	if err := mysqldb.Migrate(ctx, db, bad, nil); err == nil {
		t.Fatal("a broken migration was accepted")
	}
}

func TestOpenGivesUpWhenTheContextEnds(t *testing.T) {
	if _, err := mysqldb.Open(context.Background(), "not a dsn"); err == nil {
		t.Fatal("invalid DSN accepted")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := mysqldb.Open(ctx, "u:p@tcp(127.0.0.1:1)/db")
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("Open = %v after %v", err, time.Since(start))
	}
}
