package mysqldb_test

import (
	"context"
	"slices"
	"testing"

	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

// TestPage reads pages of a filtered list with its total count.
func TestPage(t *testing.T) {
	db := testinfra.NewServiceDatabase(t)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE things (id INT PRIMARY KEY, kind VARCHAR(10) NOT NULL, colour VARCHAR(10) NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO things VALUES (1, 'a', 'red'), (2, 'b', 'red'), (3, 'a', 'blue'), (4, 'a', 'red'), (5, 'a', 'red')`); err != nil {
		t.Fatal(err)
	}
	type thing struct {
		ID   int    `db:"id"`
		Kind string `db:"kind"`
	}
	ids := func(rows []thing) (out []int) {
		for _, r := range rows {
			out = append(out, r.ID)
		}
		return out
	}
	for _, c := range []struct {
		kind, colour  string
		limit, offset int
		want          []int
		total         int
	}{
		{"", "", 10, 0, []int{5, 4, 3, 2, 1}, 5},
		{"a", "", 2, 0, []int{5, 4}, 4},
		{"a", "red", 2, 1, []int{4, 1}, 3},
		{"a", "red", 2, 3, nil, 3},
		{"c", "", 10, 0, nil, 0},
	} {
		var f mysqldb.Filter
		f.Equal("kind", c.kind)
		f.Equal("colour", c.colour)
		rows, total, err := mysqldb.Page[thing](ctx, db, "id, kind", "things", f, "id DESC", c.limit, c.offset)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(rows); total != c.total || !slices.Equal(got, c.want) {
			t.Errorf("kind %q colour %q limit %d offset %d: %v of %d, want %v of %d", c.kind, c.colour, c.limit, c.offset, got, total, c.want, c.total)
		}
	}
}
