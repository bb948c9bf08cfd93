// Package mysqldb opens a service's MySQL/MariaDB database and applies its
// embedded goose migrations.
package mysqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
)

// maxOpenConns bounds the connections of a pool opened by Open: the bus's
// handlers (eventbus.Config.Concurrency, 16 by default), the outbox relay
// and HTTP requests share them.
const maxOpenConns = 20

// Open parses dsn (go-sql-driver format: user:pass@tcp(host:port)/db?...),
// forces parseTime=true, loc=UTC, utf8mb4 and clientFoundRows=false, and pings the server until it
// answers or ctx is done, backing off from 100 ms to 2 s between attempts
// (so a service started alongside its database waits for it). It returns
// the open pool, or the last ping error wrapped with ctx's error.
//
// Statements with arguments are sent as one query, one round trip
// (interpolateParams: the driver escapes the arguments, which is safe with
// utf8mb4), instead of a server-side prepared statement per call (prepare
// and execute, two round trips, then a close): a handler's transaction of
// ten statements waits for ten answers, not twenty, and the server parses
// each statement once instead of preparing and discarding it. The pool
// keeps as many idle connections as it may open (maxOpenConns), so that a
// burst does not close and redial connections.
//
// Options: WithCAFile makes the connections use TLS verified against a CA
// (MYSQL_CA_FILE); the DSN's own tls=true, skip-verify or preferred work too.
func Open(ctx context.Context, dsn string, opts ...Option) (*sqlx.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("mysqldb: parse dsn: %w", err)
	}
	for _, opt := range opts {
		if err := opt(cfg); err != nil {
			return nil, fmt.Errorf("mysqldb: %w", err)
		}
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.Collation = "utf8mb4_unicode_ci"
	cfg.InterpolateParams = true
	// Affected rows count changed rows, not matched ones: the inbox and the
	// stores' upserts read 1 as inserted, 2 as updated, 0 as unchanged.
	cfg.ClientFoundRows = false
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	delete(cfg.Params, "charset")
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysqldb: %w", err)
	}
	db := sqlx.NewDb(sql.OpenDB(connector), "mysql")
	db.SetMaxOpenConns(maxOpenConns)
	db.SetMaxIdleConns(maxOpenConns)
	db.SetConnMaxLifetime(5 * time.Minute)

	delay := 100 * time.Millisecond
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = db.PingContext(pctx)
		cancel()
		if err == nil {
			return db, nil
		}
		select {
		case <-ctx.Done():
			_ = db.Close()
			return nil, fmt.Errorf("mysqldb: connect to %s/%s: %w (last error: %v)", cfg.Addr, cfg.DBName, ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// Migrate applies every pending goose migration found at the root of fsys
// (files named 00001_create_customers.sql with -- +goose Up/Down sections,
// typically embedded, see Migrations) to db, recording them
// in the table goose_db_version. logger may be nil. Migrate is not safe to run
// concurrently against the same database from two processes; each service
// runs it once at start.
func Migrate(ctx context.Context, db *sqlx.DB, fsys fs.FS, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p, err := goose.NewProvider(goose.DialectMySQL, db.DB, fsys,
		goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("mysqldb: migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil && !errors.Is(err, goose.ErrNoNextVersion) {
		return fmt.Errorf("mysqldb: migrate: %w", err)
	}
	for _, r := range results {
		logger.InfoContext(ctx, "migration applied", "source", r.Source.Path, "duration", r.Duration)
	}
	return nil
}

// Migrations returns the directory dir of fsys (a service's embedded
// migrations: //go:embed migrations/*.sql) as a file system of its own, the
// form Migrate and service.Spec.Migrations take. It panics if dir is not a
// valid path (fs.ValidPath), which is a programming error caught at start:
//
//	//go:embed migrations/*.sql
//	var migrations embed.FS
//
//	var Migrations = mysqldb.Migrations(migrations, "migrations")
func Migrations(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(fmt.Sprintf("mysqldb: migrations in %q: %v", dir, err))
	}
	return sub
}

// IsDuplicate reports whether err is a MySQL duplicate-key error (1062),
// for mapping unique-constraint violations to 409.
func IsDuplicate(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1062
}
