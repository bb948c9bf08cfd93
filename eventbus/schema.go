package eventbus

import (
	"context"
	"fmt"

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
	return nil
}
