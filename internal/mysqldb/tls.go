package mysqldb

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"

	"github.com/go-sql-driver/mysql"
)

// Option adjusts the driver's configuration in Open.
type Option func(*mysql.Config) error

// WithCAFile makes every connection use TLS (1.2 at least), accepting only a
// server certificate signed by a CA of the PEM file caFile and naming the
// DSN's host (MYSQL_CA_FILE). It overrides the DSN's tls parameter. An
// empty caFile changes nothing.
func WithCAFile(caFile string) Option {
	return func(cfg *mysql.Config) error {
		if caFile == "" {
			return nil
		}
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("CA file %s: no PEM certificate found", caFile)
		}
		host := cfg.Addr
		if h, _, err := net.SplitHostPort(cfg.Addr); err == nil {
			host = h
		}
		cfg.TLS = &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}
		return nil
	}
}
