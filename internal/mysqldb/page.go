package mysqldb

import (
	"context"
	"database/sql"
	"strings"

	"github.com/jmoiron/sqlx"
)

// Filter is the WHERE clause of a list query: the conjunction of the
// conditions added to it. The zero value matches every row.
type Filter struct {
	conds []string
	args  []any
}

// Cond adds a condition of the caller's, with its arguments. cond is written
// into the SQL as is: a constant of the caller, never input.
func (f *Filter) Cond(cond string, args ...any) {
	f.conds = append(f.conds, cond)
	f.args = append(f.args, args...)
}

// Equal adds "column = value" unless value is empty (a filter the caller
// left unset). column is written into the SQL as is: it must be a constant
// of the store, never input.
func (f *Filter) Equal(column, value string) {
	if value == "" {
		return
	}
	f.conds = append(f.conds, column+" = ?")
	f.args = append(f.args, value)
}

func (f Filter) clause() string {
	if len(f.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(f.conds, " AND ")
}

// Page reads one page of a list: the rows of table matching filter, ordered
// by orderBy, at most limit of them from offset, scanned into []R by
// sqlx (R's db tags name columns), and the number of rows matching filter
// in all. Both are read in one read-only transaction, so that the count and
// the page see the same snapshot. columns, table and orderBy are written
// into the SQL as they are: constants of the store, never input.
func Page[R any](ctx context.Context, db *sqlx.DB, columns, table string, filter Filter, orderBy string, limit, offset int) ([]R, int, error) {
	tx, err := db.BeginTxx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = tx.Rollback() }()
	where := filter.clause()
	var total int
	if err := tx.GetContext(ctx, &total, `SELECT COUNT(*) FROM `+table+where, filter.args...); err != nil {
		return nil, 0, err
	}
	var rows []R
	args := append(append([]any(nil), filter.args...), limit, offset)
	if err := tx.SelectContext(ctx, &rows, `SELECT `+columns+` FROM `+table+where+` ORDER BY `+orderBy+` LIMIT ? OFFSET ?`, args...); err != nil {
		return nil, 0, err
	}
	return rows, total, tx.Commit()
}
