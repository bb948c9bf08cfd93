package mysqldb_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

// TestOpenWithCAFile: with WithCAFile the pool's connections are
// encrypted (the server reports a cipher for the session), a server whose
// certificate another CA signed is refused with a certificate error, and a
// user who must use TLS cannot connect without it.
func TestOpenWithCAFile(t *testing.T) {
	ca := testinfra.NewTestCA(t, "mysql test CA")
	dsn := testinfra.StartMariaDBTLS(t, ca)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	db, err := mysqldb.Open(ctx, dsn, mysqldb.WithCAFile(ca.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var name, cipher string
	if err := db.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil {
		t.Fatal(err)
	}
	if cipher == "" {
		t.Fatal("Ssl_cipher is empty: the connection is not encrypted")
	}
	t.Logf("MariaDB: session cipher %s", cipher)

	other := testinfra.NewTestCA(t, "another CA")
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	defer cancelShort()
	_, err = mysqldb.Open(short, dsn, mysqldb.WithCAFile(other.CAFile))
	if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("Open trusting another CA: %v, want a certificate error", err)
	}

	plain, cancelPlain := context.WithTimeout(ctx, 2*time.Second)
	defer cancelPlain()
	if _, err := mysqldb.Open(plain, dsn); err == nil {
		t.Fatal("a REQUIRE SSL user connected without TLS")
	}
	if _, err := mysqldb.Open(ctx, dsn, mysqldb.WithCAFile(ca.Dir+"/missing.pem")); err == nil {
		t.Fatal("a missing CA file was accepted")
	}
}
