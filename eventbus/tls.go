package eventbus

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// tlsConfig returns the TLS configuration of an amqps:// connection: the
// certificate authorities of CAFile as the only roots, TLS 1.2 at least;
// nil without CAFile (amqp091 then uses the system's roots).
func (c Config) tlsConfig() (*tls.Config, error) {
	if c.CAFile == "" {
		return nil, nil
	}
	pool, err := LoadCA(c.CAFile)
	if err != nil {
		return nil, fmt.Errorf("eventbus: Config.CAFile: %w", err)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// LoadCA reads a PEM file of one or more CA certificates into a pool.
func LoadCA(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate found", file)
	}
	return pool, nil
}
