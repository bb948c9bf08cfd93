package mysqldb_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

func TestIsRetryable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&mysql.MySQLError{Number: 1213, Message: "Deadlock found when trying to get lock"}, true},
		{&mysql.MySQLError{Number: 1205, Message: "Lock wait timeout exceeded"}, true},
		{fmt.Errorf("reserve: %w", fmt.Errorf("commit: %w", &mysql.MySQLError{Number: 1213})), true},
		{nil, false},
		{errors.New("Deadlock found when trying to get lock"), false},
		{&mysql.MySQLError{Number: 1062, Message: "Duplicate entry"}, false},
		{&mysql.MySQLError{Number: 1146, Message: "Table doesn't exist"}, false},
		{&mysql.MySQLError{Number: 1040, Message: "Too many connections"}, false},
		{mysql.ErrInvalidConn, false},
		{driver.ErrBadConn, false},
		{sql.ErrConnDone, false},
		{io.ErrUnexpectedEOF, false},
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, false},
		{context.Canceled, false},
		{sql.ErrNoRows, false},
	}
	for _, tt := range tests {
		if got := mysqldb.IsRetryable(tt.err); got != tt.want {
			t.Errorf("IsRetryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// newCounters opens a pool on a fresh database with a table of two
// counters, rows 1 and 2, at 0.
func newCounters(t *testing.T) *sqlx.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db := testinfra.NewServiceDatabase(t)
	if _, err := db.ExecContext(ctx, `CREATE TABLE counters (id INT PRIMARY KEY, n INT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO counters VALUES (1, 0), (2, 0)`); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestInTxRetriesADeadlock runs two transactions that lock rows 1 and 2 in
// opposite orders, each waiting in its first attempt until the other holds
// its first row: the server kills one with a deadlock (1213). Both InTx
// calls succeed: the loser's fn ran twice, the winner's once, and both
// increments of both rows are committed.
func TestInTxRetriesADeadlock(t *testing.T) {
	db := newCounters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	locked := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	var calls [2]atomic.Int32
	var firstErr [2]error // the error of each side's first attempt
	run := func(side int, first, second int) error {
		return mysqldb.InTx(ctx, db, func(tx *sqlx.Tx) error {
			attempt := calls[side].Add(1)
			if _, err := tx.ExecContext(ctx, `UPDATE counters SET n = n + 1 WHERE id = ?`, first); err != nil {
				return err
			}
			if attempt == 1 {
				close(locked[side]) // this side holds its first row
				select {
				case <-locked[1-side]: // and the other side holds the other row
				case <-time.After(10 * time.Second):
					return errors.New("the other transaction did not lock its first row")
				}
			}
			_, err := tx.ExecContext(ctx, `UPDATE counters SET n = n + 1 WHERE id = ?`, second)
			if attempt == 1 {
				firstErr[side] = err
			}
			return err
		})
	}
	var wg sync.WaitGroup
	var errs [2]error
	wg.Go(func() { errs[0] = run(0, 1, 2) })
	wg.Go(func() { errs[1] = run(1, 2, 1) })
	wg.Wait()

	for side, err := range errs {
		if err != nil {
			t.Errorf("InTx of side %d: %v (calls: %d)", side, err, calls[side].Load())
		}
	}
	n0, n1 := calls[0].Load(), calls[1].Load()
	if !(n0 == 1 && n1 == 2 || n0 == 2 && n1 == 1) {
		t.Errorf("fn ran %d and %d times, want once for the winner and twice for the loser", n0, n1)
	}
	loser := 0
	if n1 == 2 {
		loser = 1
	}
	var me *mysql.MySQLError
	if !errors.As(firstErr[loser], &me) || me.Number != 1213 {
		t.Errorf("first attempt of the loser (side %d) failed with %v, want a deadlock (1213)", loser, firstErr[loser])
	}
	var rows []struct {
		ID int `db:"id"`
		N  int `db:"n"`
	}
	if err := db.SelectContext(ctx, &rows, `SELECT id, n FROM counters ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].N != 2 || rows[1].N != 2 {
		t.Errorf("counters %+v, want both at 2 (each transaction committed once)", rows)
	}
}

// An error that is not retryable ends InTx at once: fn ran once, its
// changes are rolled back and the error is returned as fn returned it.
func TestInTxDoesNotRetryOtherErrors(t *testing.T) {
	db := newCounters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	calls := 0
	err := mysqldb.InTx(ctx, db, func(tx *sqlx.Tx) error {
		calls++
		if _, err := tx.ExecContext(ctx, `UPDATE counters SET n = 7 WHERE id = 2`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO counters VALUES (1, 0)`)
		return fmt.Errorf("insert: %w", err)
	})
	if !mysqldb.IsDuplicate(err) || calls != 1 {
		t.Fatalf("InTx = %v after %d calls, want the duplicate-key error after 1", err, calls)
	}
	var n int
	if err := db.GetContext(ctx, &n, `SELECT n FROM counters WHERE id = 2`); err != nil || n != 0 {
		t.Fatalf("counter 2 = %d (%v), want 0: the failed transaction was committed", n, err)
	}

	sentinel := errors.New("rule broken")
	calls = 0
	err = mysqldb.InTx(ctx, db, func(tx *sqlx.Tx) error { calls++; return sentinel })
	if err != sentinel || calls != 1 {
		t.Fatalf("InTx = %v after %d calls, want the sentinel after 1", err, calls)
	}

	calls = 0
	if err := mysqldb.InTx(ctx, db, func(tx *sqlx.Tx) error {
		calls++
		_, err := tx.ExecContext(ctx, `UPDATE counters SET n = 5 WHERE id = 1`)
		return err
	}); err != nil || calls != 1 {
		t.Fatalf("InTx = %v after %d calls, want nil after 1", err, calls)
	}
	if err := db.GetContext(ctx, &n, `SELECT n FROM counters WHERE id = 1`); err != nil || n != 5 {
		t.Fatalf("counter 1 = %d (%v), want 5: the transaction was not committed", n, err)
	}
}

// A retryable error that persists is returned after a bounded number of
// attempts; a context that ends stops the retries at once.
func TestInTxGivesUp(t *testing.T) {
	db := newCounters(t)
	deadlock := &mysql.MySQLError{Number: 1213, Message: "Deadlock found when trying to get lock"}

	calls := 0
	start := time.Now()
	err := mysqldb.InTx(context.Background(), db, func(tx *sqlx.Tx) error { calls++; return deadlock })
	if err != deadlock || calls != 5 {
		t.Fatalf("InTx = %v after %d calls, want the deadlock after 5", err, calls)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("5 attempts took %v", d)
	}

	ctx, cancel := context.WithCancel(context.Background())
	calls = 0
	err = mysqldb.InTx(ctx, db, func(tx *sqlx.Tx) error { calls++; cancel(); return deadlock })
	if err != deadlock || calls != 1 {
		t.Fatalf("InTx with its context cancelled = %v after %d calls, want the deadlock after 1", err, calls)
	}
}

// TestInTxNotify calls notify once after a commit whose fn enqueued, and not
// when fn enqueued nothing or failed (its changes rolled back).
func TestInTxNotify(t *testing.T) {
	db := newCounters(t)
	ctx := context.Background()
	notified := 0
	notify := func() { notified++ }
	bump := func(enqueued bool, fail error) error {
		return mysqldb.InTxNotify(ctx, db, notify, func(tx *sqlx.Tx) (bool, error) {
			if _, err := tx.ExecContext(ctx, `UPDATE counters SET n = n + 1 WHERE id = 1`); err != nil {
				return false, err
			}
			return enqueued, fail
		})
	}
	if err := bump(true, nil); err != nil || notified != 1 {
		t.Fatalf("enqueued: err %v, notified %d, want 1", err, notified)
	}
	if err := bump(false, nil); err != nil || notified != 1 {
		t.Fatalf("nothing enqueued: err %v, notified %d, want still 1", err, notified)
	}
	boom := errors.New("boom")
	if err := bump(true, boom); !errors.Is(err, boom) || notified != 1 {
		t.Fatalf("failed: err %v, notified %d, want boom and still 1", err, notified)
	}
	var n int
	if err := db.GetContext(ctx, &n, `SELECT n FROM counters WHERE id = 1`); err != nil || n != 2 {
		t.Fatalf("counter %d (%v), want 2: the failed transaction rolled back", n, err)
	}
	if err := mysqldb.InTxNotify(ctx, db, nil, func(*sqlx.Tx) (bool, error) { return true, nil }); err != nil {
		t.Fatalf("nil notify: %v", err)
	}
}
