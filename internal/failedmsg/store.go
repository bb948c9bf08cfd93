package failedmsg

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
)

// schema creates the tables of failed messages in the service's database.
// Statements are idempotent and run on MariaDB 10.11 and MySQL 8.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS failed_messages (
		id              CHAR(36)      NOT NULL PRIMARY KEY,
		message_key     VARCHAR(191)  NOT NULL,
		message_id      VARCHAR(255)  NOT NULL,
		type            VARCHAR(255)  NOT NULL,
		app_id          VARCHAR(255)  NOT NULL,
		content_type    VARCHAR(255)  NOT NULL,
		correlation_id  VARCHAR(255)  NOT NULL,
		trace_id        VARCHAR(32)   NOT NULL,
		sent_at         DATETIME(3)   NULL,
		headers         MEDIUMTEXT    NOT NULL,
		body            MEDIUMBLOB    NOT NULL,
		original_body   MEDIUMBLOB    NULL,
		reason          TEXT          NOT NULL,
		fingerprint     CHAR(16)      NOT NULL,
		malformed       VARCHAR(1024) NOT NULL,
		status          VARCHAR(16)   NOT NULL,
		attempts        INT           NOT NULL,
		dead_letters    INT           NOT NULL,
		retries         INT           NOT NULL,
		first_failed_at DATETIME(3)   NOT NULL,
		last_failed_at  DATETIME(3)   NOT NULL,
		retried_at      DATETIME(3)   NULL,
		resolved_at     DATETIME(3)   NULL,
		version         BIGINT        NOT NULL,
		UNIQUE KEY failed_messages_key (message_key),
		KEY failed_messages_last (last_failed_at),
		KEY failed_messages_status (status, last_failed_at),
		KEY failed_messages_group (fingerprint, last_failed_at),
		KEY failed_messages_type (type, last_failed_at)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`,
	`CREATE TABLE IF NOT EXISTS failed_message_receipts (
		message_key VARCHAR(191) NOT NULL,
		retries     INT          NOT NULL,
		dead_at     VARCHAR(32)  NOT NULL,
		received_at DATETIME(3)  NOT NULL,
		PRIMARY KEY (message_key, retries, dead_at)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`,
	`CREATE TABLE IF NOT EXISTS failed_message_retries (
		id              CHAR(36)     NOT NULL PRIMARY KEY,
		fingerprint     CHAR(16)     NOT NULL,
		selected_ids    INT          NOT NULL,
		batch_size      INT          NOT NULL,
		rate_per_second DOUBLE       NOT NULL,
		status          VARCHAR(16)  NOT NULL,
		total           INT          NOT NULL,
		done            INT          NOT NULL,
		succeeded       INT          NOT NULL,
		failed          INT          NOT NULL,
		restarts        INT          NOT NULL,
		actor           VARCHAR(255) NOT NULL,
		request_id      VARCHAR(128) NOT NULL,
		owner           VARCHAR(64)  NOT NULL,
		lease_until     DATETIME(3)  NULL,
		created_at      DATETIME(3)  NOT NULL,
		updated_at      DATETIME(3)  NOT NULL,
		finished_at     DATETIME(3)  NULL,
		KEY failed_message_retries_status (status, created_at),
		KEY failed_message_retries_created (created_at)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`,
	`CREATE TABLE IF NOT EXISTS failed_message_retry_items (
		retry_id          CHAR(36)      NOT NULL,
		seq               INT           NOT NULL,
		failed_message_id CHAR(36)      NOT NULL,
		message_id        VARCHAR(255)  NOT NULL,
		outcome           VARCHAR(16)   NOT NULL,
		retries           INT           NOT NULL,
		detail            VARCHAR(1024) NOT NULL,
		done_at           DATETIME(3)   NULL,
		PRIMARY KEY (retry_id, seq),
		KEY failed_message_retry_items_outcome (retry_id, outcome, seq)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`,
	`CREATE TABLE IF NOT EXISTS failed_message_actions (
		id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
		at         DATETIME(3)     NOT NULL,
		actor      VARCHAR(255)    NOT NULL,
		request_id VARCHAR(128)    NOT NULL,
		action     VARCHAR(32)     NOT NULL,
		target     VARCHAR(255)    NOT NULL,
		count      INT             NOT NULL,
		retry_id   VARCHAR(36)     NOT NULL,
		detail     VARCHAR(1024)   NOT NULL,
		KEY failed_message_actions_at (at)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`,
}

// Migrate creates the tables of failed messages in the service's database
// (failed_messages, failed_message_receipts, failed_message_retries,
// failed_message_retry_items, failed_message_actions). Safe to run at every
// start; the kit runs it for every service with a queue.
func Migrate(ctx context.Context, db *sqlx.DB) error {
	for _, stmt := range schema {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("failedmsg: migrate: %w", err)
		}
	}
	return nil
}

// Errors of the store, mapped to HTTP statuses by the API.
var (
	ErrNotFound = errors.New("failedmsg: not found")
	ErrStale    = errors.New("failedmsg: stale version")
)

// ConflictError is a request the current state forbids (409).
type ConflictError struct{ Msg string }

func (e *ConflictError) Error() string { return e.Msg }

// InvalidError is a request naming something that cannot be used (422).
type InvalidError struct{ Field, Msg string }

func (e *InvalidError) Error() string { return e.Field + ": " + e.Msg }

// Identity is who asked for an action, as recorded in the audit log.
type Identity struct {
	Actor     string
	RequestID string
}

// Store keeps failed messages in the service's database. Each exported
// method is one transaction (retried on a deadlock); all are safe for
// concurrent use, also by several instances of the service.
type Store struct {
	db  *sqlx.DB
	now func() time.Time
}

// NewStore returns the store on db (migrated with Migrate).
func NewStore(db *sqlx.DB) *Store {
	return &Store{db: db, now: func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }}
}

// keyOf returns the row key of a dead letter: the event's uuid, or for a
// malformed message a digest of the dead letter itself (such messages have
// no trustworthy identity; each is its own row).
func keyOf(dl eventbus.DeadLetter) string {
	if dl.Malformed == "" {
		return dl.MessageID
	}
	h := sha256.New()
	for _, s := range []string{dl.MessageID, dl.Type, dl.AppID, dl.DeadAtRaw, dl.Reason} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(dl.Body)
	return "malformed:" + hex.EncodeToString(h.Sum(nil))[:40]
}

// Keep records one dead letter: a new row, or, for an event already kept,
// its new failure (reason, attempts, dead-letterings; back to unresolved
// when it failed after the latest retry). A dead letter already recorded
// (same key, same retry count, same x-dead-lettered-at) changes nothing. It
// returns whether the dead letter was new.
func (s *Store) Keep(ctx context.Context, dl eventbus.DeadLetter) (bool, error) {
	key := keyOf(dl)
	fp := Fingerprint(dl.Type, dl.Reason)
	if dl.Malformed != "" {
		fp = Fingerprint(dl.Type, "malformed: "+dl.Malformed)
	}
	headers, err := json.Marshal(dl.Headers)
	if err != nil {
		return false, fmt.Errorf("failedmsg: encode headers: %w", err)
	}
	var ts *time.Time
	if !dl.Timestamp.IsZero() {
		t := dl.Timestamp.UTC()
		ts = &t
	}
	deadAt := dl.DeadAt.UTC()
	isNew := false
	err = mysqldb.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		isNew = false
		res, err := tx.ExecContext(ctx, `INSERT INTO failed_message_receipts (message_key, retries, dead_at, received_at)
			VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE message_key = message_key`, key, dl.Retries, dl.DeadAtRaw, s.now())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err // seen before (or the error)
		}
		isNew = true
		var cur struct {
			ID      string `db:"id"`
			Status  string `db:"status"`
			Retries int    `db:"retries"`
			Last    time.Time
		}
		err = tx.QueryRowxContext(ctx, `SELECT id, status, retries, last_failed_at FROM failed_messages WHERE message_key = ? FOR UPDATE`, key).
			Scan(&cur.ID, &cur.Status, &cur.Retries, &cur.Last)
		if errors.Is(err, sql.ErrNoRows) {
			_, err = tx.ExecContext(ctx, `INSERT INTO failed_messages (id, message_key, message_id, type, app_id, content_type,
				correlation_id, trace_id, sent_at, headers, body, reason, fingerprint, malformed, status, attempts, dead_letters,
				retries, first_failed_at, last_failed_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, 1)`,
				uuid.NewString(), key, clip(dl.MessageID, 255), clip(dl.Type, 255), clip(dl.AppID, 255), clip(dl.ContentType, 255),
				clip(dl.CorrelationID, 255), traceID(dl.Traceparent), ts, string(headers), dl.Body, dl.Reason, fp, clip(dl.Malformed, 1024),
				string(Unresolved), dl.Attempts, dl.Retries, deadAt, deadAt)
			return err
		}
		if err != nil {
			return err
		}
		status := Status(cur.Status)
		if status == Retrying && dl.Retries >= cur.Retries {
			status = Unresolved // failed again after the latest retry
		}
		last := cur.Last
		if deadAt.After(last) {
			last = deadAt
		}
		_, err = tx.ExecContext(ctx, `UPDATE failed_messages SET reason = ?, fingerprint = ?, status = ?, attempts = attempts + ?,
			dead_letters = dead_letters + 1, last_failed_at = ?, version = version + 1 WHERE id = ?`,
			dl.Reason, fp, string(status), dl.Attempts, last, cur.ID)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("failedmsg: keep dead letter %s: %w", dl.MessageID, err)
	}
	return isNew, nil
}

// Resolve marks resolved every message being retried whose uuid is now in
// the service's inbox (eventbus_inbox: its handler committed), and returns
// how many it marked.
func (s *Store) Resolve(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE failed_messages f JOIN eventbus_inbox i ON i.uuid = f.message_id
		SET f.status = 'resolved', f.resolved_at = i.handled_at, f.version = f.version + 1
		WHERE f.status = 'retrying' AND f.malformed = ''`)
	if err != nil {
		return 0, fmt.Errorf("failedmsg: resolve: %w", err)
	}
	return res.RowsAffected()
}

// UnresolvedCount returns how many messages are unresolved (for a gauge of
// dead letters waiting for an operator).
func (s *Store) UnresolvedCount(ctx context.Context) (int, error) {
	var n int
	err := s.db.GetContext(ctx, &n, `SELECT COUNT(*) FROM failed_messages WHERE status = 'unresolved'`)
	return n, err
}

const messageColumns = `id, message_key, message_id, type, app_id, content_type, correlation_id, trace_id, sent_at, headers, body,
	original_body, reason, fingerprint, malformed, status, attempts, dead_letters, retries, first_failed_at, last_failed_at, retried_at, resolved_at, version`

type scanner interface{ Scan(dest ...any) error }

func scanMessage(row scanner) (Message, error) {
	var m Message
	var headers, status string
	var ts, retried, resolved sql.NullTime
	err := row.Scan(&m.ID, &m.Key, &m.MessageID, &m.Type, &m.AppID, &m.ContentType, &m.CorrelationID, &m.TraceID, &ts, &headers, &m.Body,
		&m.OriginalBody, &m.Reason, &m.Fingerprint, &m.Malformed, &status, &m.Attempts, &m.DeadLetters, &m.Retries, &m.FirstFailedAt, &m.LastFailedAt,
		&retried, &resolved, &m.Version)
	if err != nil {
		return m, err
	}
	m.Status = Status(status)
	m.Timestamp, m.RetriedAt, m.ResolvedAt = nullTime(ts), nullTime(retried), nullTime(resolved)
	_ = json.Unmarshal([]byte(headers), &m.Headers)
	return m, nil
}

func nullTime(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	v := t.Time.UTC()
	return &v
}

func (f Filter) where() (string, []any) {
	var conds []string
	var args []any
	if f.Type != "" {
		conds, args = append(conds, "type = ?"), append(args, f.Type)
	}
	if f.Fingerprint != "" {
		conds, args = append(conds, "fingerprint = ?"), append(args, f.Fingerprint)
	}
	if f.Status != "" {
		conds, args = append(conds, "status = ?"), append(args, string(f.Status))
	}
	if !f.From.IsZero() {
		conds, args = append(conds, "last_failed_at >= ?"), append(args, f.From.UTC())
	}
	if !f.To.IsZero() {
		conds, args = append(conds, "last_failed_at <= ?"), append(args, f.To.UTC())
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// List returns one page of the messages f selects, the latest failure first,
// and how many f selects in all.
func (s *Store) List(ctx context.Context, f Filter, limit, offset int) ([]Message, int, error) {
	where, args := f.where()
	var total int
	if err := s.db.GetContext(ctx, &total, `SELECT COUNT(*) FROM failed_messages`+where, args...); err != nil {
		return nil, 0, fmt.Errorf("failedmsg: count: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+messageColumns+` FROM failed_messages`+where+
		` ORDER BY last_failed_at DESC, id DESC LIMIT ? OFFSET ?`, append(args, limit, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("failedmsg: list: %w", err)
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("failedmsg: list: %w", err)
		}
		out = append(out, m)
	}
	return out, total, rows.Err()
}

// Get returns one message, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Message, error) {
	m, err := scanMessage(s.db.QueryRowContext(ctx, `SELECT `+messageColumns+` FROM failed_messages WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return m, ErrNotFound
	}
	if err != nil {
		return m, fmt.Errorf("failedmsg: get %s: %w", id, err)
	}
	return m, nil
}

const groupSelect = `SELECT g.fingerprint, g.type, g.n, g.unresolved, g.first_failed_at, g.last_failed_at,
	(SELECT f2.reason FROM failed_messages f2 WHERE f2.fingerprint = g.fingerprint ORDER BY f2.last_failed_at DESC LIMIT 1)
	FROM (SELECT fingerprint, MAX(type) AS type, COUNT(*) AS n, SUM(status = 'unresolved') AS unresolved,
		MIN(first_failed_at) AS first_failed_at, MAX(last_failed_at) AS last_failed_at
		FROM failed_messages`

func scanGroups(rows *sql.Rows) ([]Group, error) {
	defer rows.Close()
	var out []Group
	for rows.Next() {
		var g Group
		if err := rows.Scan(&g.Fingerprint, &g.Type, &g.Count, &g.Unresolved, &g.FirstFailedAt, &g.LastFailedAt, &g.Reason); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// Groups returns one page of the groups of the messages f selects (its
// Fingerprint is ignored), the latest failure first, and how many there are.
func (s *Store) Groups(ctx context.Context, f Filter, limit, offset int) ([]Group, int, error) {
	f.Fingerprint = ""
	where, args := f.where()
	var total int
	if err := s.db.GetContext(ctx, &total, `SELECT COUNT(DISTINCT fingerprint) FROM failed_messages`+where, args...); err != nil {
		return nil, 0, fmt.Errorf("failedmsg: count groups: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, groupSelect+where+` GROUP BY fingerprint) g ORDER BY g.last_failed_at DESC, g.fingerprint LIMIT ? OFFSET ?`,
		append(args, limit, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("failedmsg: groups: %w", err)
	}
	out, err := scanGroups(rows)
	if err != nil {
		return nil, 0, fmt.Errorf("failedmsg: groups: %w", err)
	}
	return out, total, nil
}

// Group returns the group with fingerprint fp, or ErrNotFound.
func (s *Store) Group(ctx context.Context, fp string) (Group, error) {
	rows, err := s.db.QueryContext(ctx, groupSelect+` WHERE fingerprint = ? GROUP BY fingerprint) g`, fp)
	if err != nil {
		return Group{}, fmt.Errorf("failedmsg: group: %w", err)
	}
	gs, err := scanGroups(rows)
	if err != nil {
		return Group{}, fmt.Errorf("failedmsg: group: %w", err)
	}
	if len(gs) == 0 {
		return Group{}, ErrNotFound
	}
	return gs[0], nil
}

// SetStatus archives (to Archived) or unarchives (to Unresolved) one
// message and records the action. allow is the request's If-Match check of
// the current version (ErrStale when it refuses). Archiving is allowed from
// unresolved and resolved, unarchiving from archived; asking for the status
// the message already has changes nothing and records nothing. Other
// changes give a *ConflictError; an unknown id ErrNotFound.
func (s *Store) SetStatus(ctx context.Context, id string, to Status, allow func(version int64) bool, who Identity) (Message, error) {
	var out Message
	err := mysqldb.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		m, err := scanMessage(tx.QueryRowContext(ctx, `SELECT `+messageColumns+` FROM failed_messages WHERE id = ? FOR UPDATE`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if !allow(m.Version) {
			return ErrStale
		}
		out = m
		if m.Status == to {
			return nil
		}
		var action string
		switch {
		case to == Archived && (m.Status == Unresolved || m.Status == Resolved):
			action = "archive"
		case to == Unresolved && m.Status == Archived:
			action = "unarchive"
		case to == Archived:
			return &ConflictError{fmt.Sprintf("the message is %s: it can be archived once it is unresolved again", m.Status)}
		default:
			return &ConflictError{fmt.Sprintf("the message is %s: only an archived message can be set back to unresolved", m.Status)}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE failed_messages SET status = ?, version = version + 1 WHERE id = ?`, string(to), id); err != nil {
			return err
		}
		out.Status, out.Version = to, m.Version+1
		return s.record(ctx, tx, who, action, id, 1, "", fmt.Sprintf("%s %s (%s): %s -> %s", m.MessageID, m.Type, m.Fingerprint, m.Status, to))
	})
	return out, err
}

// EditPayload replaces the payload of an unresolved, well-formed message
// before it is retried, keeping the first payload as its original, and
// records the action. The new payload must pass the event rules with the
// message's own properties (eventbus.ValidateMessage): its uuid stays the
// message id, so the inbox still recognises the event. A payload that does
// not is an *InvalidError; a message that is malformed or not unresolved a
// *ConflictError; allow and ErrStale, ErrNotFound as for SetStatus.
func (s *Store) EditPayload(ctx context.Context, id string, body []byte, allow func(version int64) bool, who Identity) (Message, error) {
	var out Message
	err := mysqldb.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		m, err := scanMessage(tx.QueryRowContext(ctx, `SELECT `+messageColumns+` FROM failed_messages WHERE id = ? FOR UPDATE`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if !allow(m.Version) {
			return ErrStale
		}
		switch {
		case m.Malformed != "":
			return &ConflictError{"the message is malformed (" + m.Malformed + "): it can be archived, not edited"}
		case m.Status != Unresolved:
			return &ConflictError{fmt.Sprintf("the message is %s: only an unresolved message can be edited", m.Status)}
		}
		if err := eventbus.ValidateMessage(m.ContentType, m.MessageID, m.AppID, m.Type, body); err != nil {
			var mal *eventbus.MalformedError
			if errors.As(err, &mal) {
				return &InvalidError{"/payload", mal.Reason + " (the uuid must stay " + m.MessageID + ")"}
			}
			return &InvalidError{"/payload", err.Error()}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE failed_messages SET original_body = COALESCE(original_body, body), body = ?, version = version + 1
			WHERE id = ?`, body, id); err != nil {
			return err
		}
		if m.OriginalBody == nil {
			m.OriginalBody = m.Body
		}
		m.Body, m.Version = body, m.Version+1
		out = m
		return s.record(ctx, tx, who, "edit", id, 1, "", fmt.Sprintf("%s %s: payload of %d bytes replaced by %d bytes", m.MessageID, m.Type, len(m.OriginalBody), len(body)))
	})
	return out, err
}

func (s *Store) record(ctx context.Context, tx *sqlx.Tx, who Identity, action, target string, count int, retryID, detail string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO failed_message_actions (at, actor, request_id, action, target, count, retry_id, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, s.now(), clip(who.Actor, 255), clip(who.RequestID, 128), action, clip(target, 255), count, retryID, clip(detail, 1024))
	return err
}

// Actions returns one page of the audit log, the latest first, and its size.
func (s *Store) Actions(ctx context.Context, limit, offset int) ([]Action, int, error) {
	var total int
	if err := s.db.GetContext(ctx, &total, `SELECT COUNT(*) FROM failed_message_actions`); err != nil {
		return nil, 0, fmt.Errorf("failedmsg: count actions: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, at, actor, request_id, action, target, count, retry_id, detail
		FROM failed_message_actions ORDER BY id DESC LIMIT ? OFFSET ?`, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("failedmsg: actions: %w", err)
	}
	defer rows.Close()
	var out []Action
	for rows.Next() {
		var a Action
		if err := rows.Scan(&a.ID, &a.At, &a.Actor, &a.RequestID, &a.Action, &a.Target, &a.Count, &a.RetryID, &a.Detail); err != nil {
			return nil, 0, err
		}
		out = append(out, a)
	}
	return out, total, rows.Err()
}

// Action returns one entry of the audit log, or ErrNotFound.
func (s *Store) Action(ctx context.Context, id int64) (Action, error) {
	var a Action
	err := s.db.QueryRowContext(ctx, `SELECT id, at, actor, request_id, action, target, count, retry_id, detail
		FROM failed_message_actions WHERE id = ?`, id).
		Scan(&a.ID, &a.At, &a.Actor, &a.RequestID, &a.Action, &a.Target, &a.Count, &a.RetryID, &a.Detail)
	if errors.Is(err, sql.ErrNoRows) {
		return a, ErrNotFound
	}
	if err != nil {
		return a, fmt.Errorf("failedmsg: action %d: %w", id, err)
	}
	return a, nil
}

// Selection is what a retry operation retries: IDs (failed message ids) or
// every unresolved, well-formed message of the group Group.
type Selection struct {
	IDs   []string
	Group string
}

// CreateRetry records a retry operation of sel (status running, every
// message pending) and the action, and returns it; the runner then carries
// it out. For IDs, every id must exist (else an *InvalidError naming them)
// and be unresolved and well formed (else a *ConflictError: a malformed
// message is never retried, an archived one must be unarchived first). For a
// group, an unknown fingerprint is ErrNotFound and a group with nothing to
// retry a *ConflictError.
func (s *Store) CreateRetry(ctx context.Context, sel Selection, batchSize int, rate float64, who Identity) (Retry, error) {
	var out Retry
	err := mysqldb.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		type row struct {
			ID        string `db:"id"`
			MessageID string `db:"message_id"`
			Status    string `db:"status"`
			Malformed string `db:"malformed"`
		}
		var rows []row
		var target string
		if len(sel.IDs) > 0 {
			q, args, err := sqlx.In(`SELECT id, message_id, status, malformed FROM failed_messages WHERE id IN (?) ORDER BY first_failed_at, id FOR UPDATE`, sel.IDs)
			if err != nil {
				return err
			}
			if err := tx.SelectContext(ctx, &rows, q, args...); err != nil {
				return err
			}
			found := map[string]row{}
			for _, r := range rows {
				found[r.ID] = r
			}
			var missing []string
			for _, id := range sel.IDs {
				if _, ok := found[id]; !ok {
					missing = append(missing, id)
				}
			}
			if len(missing) > 0 {
				return &InvalidError{"/ids", "no failed message with id " + strings.Join(missing, ", ")}
			}
			for _, r := range rows {
				switch {
				case r.Malformed != "":
					return &ConflictError{fmt.Sprintf("failed message %s is malformed (%s): it cannot be retried, only archived", r.ID, r.Malformed)}
				case r.Status != string(Unresolved):
					return &ConflictError{fmt.Sprintf("failed message %s is %s: only unresolved messages can be retried", r.ID, r.Status)}
				}
			}
			target = fmt.Sprintf("ids (%d)", len(sel.IDs))
		} else {
			if err := tx.SelectContext(ctx, &rows, `SELECT id, message_id, status, malformed FROM failed_messages
				WHERE fingerprint = ? AND status = 'unresolved' AND malformed = '' ORDER BY first_failed_at, id FOR UPDATE`, sel.Group); err != nil {
				return err
			}
			if len(rows) == 0 {
				var n int
				if err := tx.GetContext(ctx, &n, `SELECT COUNT(*) FROM failed_messages WHERE fingerprint = ?`, sel.Group); err != nil {
					return err
				}
				if n == 0 {
					return ErrNotFound
				}
				return &ConflictError{"the group has no unresolved, well-formed message to retry (malformed messages can only be archived)"}
			}
			target = "group:" + sel.Group
		}
		now := s.now()
		out = Retry{ID: uuid.NewString(), Group: sel.Group, IDs: len(sel.IDs), BatchSize: batchSize, RatePerSecond: rate,
			Status: OpRunning, Total: len(rows), Actor: who.Actor, RequestID: who.RequestID, CreatedAt: now, UpdatedAt: now}
		if _, err := tx.ExecContext(ctx, `INSERT INTO failed_message_retries (id, fingerprint, selected_ids, batch_size, rate_per_second,
			status, total, done, succeeded, failed, restarts, actor, request_id, owner, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, 0, 0, ?, ?, '', ?, ?)`, out.ID, sel.Group, len(sel.IDs), batchSize, rate,
			string(OpRunning), len(rows), clip(who.Actor, 255), clip(who.RequestID, 128), now, now); err != nil {
			return err
		}
		for start := 0; start < len(rows); start += 500 {
			chunk := rows[start:min(start+500, len(rows))]
			var b strings.Builder
			args := make([]any, 0, 4*len(chunk))
			b.WriteString(`INSERT INTO failed_message_retry_items (retry_id, seq, failed_message_id, message_id, outcome, retries, detail) VALUES `)
			for i, r := range chunk {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(`(?, ?, ?, ?, 'pending', 0, '')`)
				args = append(args, out.ID, start+i+1, r.ID, clip(r.MessageID, 255))
			}
			if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
				return err
			}
		}
		return s.record(ctx, tx, who, "retry", target, len(rows), out.ID,
			fmt.Sprintf("batch_size %d, rate_per_second %g", batchSize, rate))
	})
	return out, err
}

const retryColumns = `id, fingerprint, selected_ids, batch_size, rate_per_second, status, total, done, succeeded, failed, restarts,
	actor, request_id, created_at, updated_at, finished_at`

func scanRetry(row scanner) (Retry, error) {
	var r Retry
	var status string
	var fin sql.NullTime
	err := row.Scan(&r.ID, &r.Group, &r.IDs, &r.BatchSize, &r.RatePerSecond, &status, &r.Total, &r.Done, &r.Succeeded, &r.Failed,
		&r.Restarts, &r.Actor, &r.RequestID, &r.CreatedAt, &r.UpdatedAt, &fin)
	r.Status, r.FinishedAt = OpStatus(status), nullTime(fin)
	return r, err
}

// GetRetry returns a retry operation with the outcome of each of its
// messages, or ErrNotFound.
func (s *Store) GetRetry(ctx context.Context, id string) (Retry, error) {
	r, err := scanRetry(s.db.QueryRowContext(ctx, `SELECT `+retryColumns+` FROM failed_message_retries WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("failedmsg: retry %s: %w", id, err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT seq, failed_message_id, message_id, outcome, detail FROM failed_message_retry_items
		WHERE retry_id = ? ORDER BY seq`, id)
	if err != nil {
		return r, fmt.Errorf("failedmsg: retry %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var it RetryItem
		if err := rows.Scan(&it.Seq, &it.FailedMessageID, &it.MessageID, &it.Outcome, &it.Detail); err != nil {
			return r, err
		}
		r.Items = append(r.Items, it)
	}
	return r, rows.Err()
}

// Retries returns one page of the retry operations (without their
// outcomes), the latest first, and how many there are.
func (s *Store) Retries(ctx context.Context, limit, offset int) ([]Retry, int, error) {
	var total int
	if err := s.db.GetContext(ctx, &total, `SELECT COUNT(*) FROM failed_message_retries`); err != nil {
		return nil, 0, fmt.Errorf("failedmsg: count retries: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+retryColumns+` FROM failed_message_retries ORDER BY created_at DESC, id LIMIT ? OFFSET ?`, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("failedmsg: retries: %w", err)
	}
	defer rows.Close()
	var out []Retry
	for rows.Next() {
		r, err := scanRetry(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, r)
	}
	return out, total, rows.Err()
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
