package testinfra

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
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

// NewServiceDatabase creates a fresh, empty database like NewDatabase and
// opens it with mysqldb.Open, as a service opens its own: with the driver
// settings stores rely on (affected rows of upserts, interpolated
// arguments). The pool is closed, then the database dropped, in t.Cleanup.
func NewServiceDatabase(t testing.TB) *sqlx.DB {
	t.Helper()
	dsn := NewDatabaseDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := mysqldb.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// NewMigratedDatabase creates a fresh database like NewServiceDatabase, with
// up to conns connections open (and as many idle), and runs migrate on it (a
// service's mysql.Migrate), failing the test on error. The pool is closed,
// then the database dropped, in t.Cleanup.
func NewMigratedDatabase(t testing.TB, conns int, migrate func(context.Context, *sqlx.DB, *slog.Logger) error) *sqlx.DB {
	t.Helper()
	db := NewServiceDatabase(t)
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := migrate(ctx, db, nil); err != nil {
		t.Fatalf("migrating the test database: %v", err)
	}
	return db
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

// NewDatabaseLockWait creates a fresh database like NewDatabase whose
// sessions wait at most seconds for a row lock (innodb_lock_wait_timeout),
// for tests of what happens on a lock wait timeout (error 1205).
func NewDatabaseLockWait(t testing.TB, seconds int) *sqlx.DB {
	t.Helper()
	cfg, err := mysql.ParseDSN(NewDatabaseDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["innodb_lock_wait_timeout"] = strconv.Itoa(seconds)
	return OpenDatabase(t, cfg.FormatDSN())
}

// AwaitLockWait waits until a transaction of db's database other than not is
// waiting for a lock, and returns it (its id and start time: the server reuses
// the id of a transaction that wrote nothing, and a transaction run again
// after a lock wait timeout starts in a later second). It fails the test when
// something is received from done meanwhile (the code under test finished
// instead of waiting), or after 10 s. It polls every 200 ms: the server
// refreshes INNODB_TRX only when it was not read in the last 100 ms.
func AwaitLockWait[T any](t testing.TB, db *sqlx.DB, not string, done <-chan T) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var trxs []string
		if err := db.Select(&trxs, `SELECT CONCAT(t.trx_id, ' started ', t.trx_started) FROM information_schema.INNODB_TRX t
			JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
			WHERE p.DB = DATABASE() AND t.trx_state = 'LOCK WAIT'`); err != nil {
			t.Fatal(err)
		}
		for _, trx := range trxs {
			if trx != not {
				return trx
			}
		}
		select {
		case r := <-done:
			t.Fatalf("the transaction ended instead of waiting for a lock: %+v", r)
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatal("no transaction waits for a lock")
	return ""
}
