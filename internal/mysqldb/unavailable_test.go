package mysqldb_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
)

func TestIsUnavailable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("something else"), false},
		{context.Canceled, false},
		{sql.ErrNoRows, false},
		{&mysql.MySQLError{Number: 1062, Message: "Duplicate entry"}, false},
		{&mysql.MySQLError{Number: 1213, Message: "Deadlock"}, false},
		{fmt.Errorf("mysql: begin: %w", refused), true},
		{fmt.Errorf("mysql: begin: %w", mysql.ErrInvalidConn), true},
		{driver.ErrBadConn, true},
		{sql.ErrConnDone, true},
		{fmt.Errorf("query: %w", &mysql.MySQLError{Number: 1053, Message: "Server shutdown in progress"}), true},
		{&mysql.MySQLError{Number: 1040, Message: "Too many connections"}, true},
	}
	for _, tt := range tests {
		if got := mysqldb.IsUnavailable(tt.err); got != tt.want {
			t.Errorf("IsUnavailable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// TestIsUnavailableFromTheDriver asks the real driver for a server nobody
// runs: the error it returns must count as unavailable.
func TestIsUnavailableFromTheDriver(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more
	db, err := sql.Open("mysql", "u:p@tcp("+addr+")/db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = db.BeginTx(ctx, nil)
	if err == nil || !mysqldb.IsUnavailable(fmt.Errorf("begin: %w", err)) {
		t.Fatalf("BeginTx on a closed port: %v; IsUnavailable = false", err)
	}
}
