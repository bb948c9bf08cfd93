package eventbus

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
)

// schema creates the outbox and inbox tables. Statements are idempotent and
// run on MariaDB 10.11 and MySQL 8.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS eventbus_outbox (
		id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
		uuid         CHAR(36)        NOT NULL,
		type         VARCHAR(255)    NOT NULL,
		app_id       VARCHAR(255)    NOT NULL,
		fired_at     DATETIME(3)     NOT NULL,
		headers      TEXT            NOT NULL,
		body         MEDIUMBLOB      NOT NULL,
		created_at   DATETIME(6)     NOT NULL,
		available_at DATETIME(6)     NOT NULL,
		attempts     INT UNSIGNED    NOT NULL DEFAULT 0,
		last_error   TEXT            NULL,
		sent_at      DATETIME(6)     NULL,
		traceparent  VARCHAR(55)     NULL,
		UNIQUE KEY eventbus_outbox_uuid (uuid),
		KEY eventbus_outbox_pending (sent_at, available_at, id)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`,
	`CREATE TABLE IF NOT EXISTS eventbus_inbox (
		uuid       CHAR(36)     NOT NULL PRIMARY KEY,
		type       VARCHAR(255) NOT NULL,
		handled_at DATETIME(6)  NOT NULL,
		KEY eventbus_inbox_handled_at (handled_at)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`,
}

// Migrate creates the tables the bus needs in the service's own database:
// eventbus_outbox (events waiting to be published) and eventbus_inbox (uuids
// of events already handled). Safe to run at every start.
func Migrate(ctx context.Context, db *sqlx.DB) error {
	for _, stmt := range schema {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("eventbus: migrate: %w", err)
		}
	}
	// Columns added after the first release, for tables created before.
	for _, c := range addedColumns {
		if err := addColumn(ctx, db, c.table, c.column, c.definition); err != nil {
			return fmt.Errorf("eventbus: migrate: %w", err)
		}
	}
	return nil
}

// addedColumns are columns added to the bus's tables since they were first
// created: Migrate adds each one that is missing.
var addedColumns = []struct{ table, column, definition string }{
	// The W3C trace context of the transaction that wrote the row (trace.go).
	{"eventbus_outbox", "traceparent", "VARCHAR(55) NULL"},
}

// addColumn adds column to table unless it exists. MySQL 8 has no ADD
// COLUMN IF NOT EXISTS, so it asks information_schema first; two instances
// migrating at once may both try, and the loser's duplicate-column error
// (1060) is ignored.
func addColumn(ctx context.Context, db *sqlx.DB, table, column, definition string) error {
	var n int
	if err := db.GetContext(ctx, &n, `SELECT COUNT(*) FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?`, table, column); err != nil {
		return fmt.Errorf("inspect %s.%s: %w", table, column, err)
	}
	if n > 0 {
		return nil
	}
	_, err := db.ExecContext(ctx, "ALTER TABLE "+table+" ADD COLUMN "+column+" "+definition)
	var me *mysql.MySQLError
	if err != nil && !(errors.As(err, &me) && me.Number == 1060) {
		return fmt.Errorf("add %s.%s: %w", table, column, err)
	}
	return nil
}
