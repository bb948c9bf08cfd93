package mysqldb_test

import (
	"context"
	"errors"
	"io/fs"
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

// Open sends statements with arguments in one round trip (the driver
// interpolates them) rather than as server-side prepared statements; values
// that need escaping, binary data and times survive the trip unchanged.
func TestOpenInterpolatesArgumentsSafely(t *testing.T) {
	dsn := testinfra.NewDatabaseDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := mysqldb.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE vals (id INT PRIMARY KEY, s TEXT NOT NULL, b BLOB NOT NULL, t DATETIME(6) NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	conn, err := db.Connx(ctx) // one session, to read its own counters
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	prepares := func() int {
		var name string
		var n int
		if err := conn.QueryRowxContext(ctx, `SHOW SESSION STATUS LIKE 'Com_stmt_prepare'`).Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := prepares()
	nasty := "it's \\ \"quoted\" \x00 ; DROP TABLE vals; -- é 🚀"
	blob := []byte{0, 1, 2, '\'', '\\', 0xff}
	when := time.Date(2026, 11, 22, 10, 0, 0, 123456000, time.UTC)
	if _, err := conn.ExecContext(ctx, `INSERT INTO vals (id, s, b, t) VALUES (?, ?, ?, ?)`, 1, nasty, blob, when); err != nil {
		t.Fatal(err)
	}
	var got struct {
		S string    `db:"s"`
		B []byte    `db:"b"`
		T time.Time `db:"t"`
	}
	if err := conn.GetContext(ctx, &got, `SELECT s, b, t FROM vals WHERE id = ? AND s = ?`, 1, nasty); err != nil {
		t.Fatal(err)
	}
	if got.S != nasty || string(got.B) != string(blob) || !got.T.Equal(when) {
		t.Errorf("round trip changed the values: %q %v %v", got.S, got.B, got.T)
	}
	if n := prepares() - before; n != 0 {
		t.Errorf("%d server-side prepared statements for two statements with arguments, want 0 (interpolateParams)", n)
	}
}

// Migrations gives the directory of an embedded tree as the root Migrate
// reads, and refuses a path fs.Sub refuses.
func TestMigrations(t *testing.T) {
	tree := fstest.MapFS{"migrations/00001_things.sql": {Data: []byte("-- +goose Up\n")}}
	if _, err := fs.Stat(mysqldb.Migrations(tree, "migrations"), "00001_things.sql"); err != nil {
		t.Fatalf("the migration is not at the root: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("an invalid directory was accepted")
		}
	}()
	mysqldb.Migrations(tree, "../migrations")
}
