// Package testinfra gives integration tests isolated pieces of the real
// infrastructure that scripts/test starts: a fresh RabbitMQ vhost, a fresh
// MariaDB database, users with the production permission rules, the management
// API, and throw-away RabbitMQ nodes that fault tests may kill.
//
// Every helper reads the environment exported by scripts/test (also written to
// <data>/env/test.env by scripts/infra-up, to run go test by hand):
//
//	SAGITTARIUS_TEST_AMQP_URL    admin AMQP URL without vhost, amqp://sagittarius-admin:PW@127.0.0.1:5672/
//	SAGITTARIUS_TEST_RABBIT_API  management API base with credentials, http://sagittarius-admin:PW@127.0.0.1:15672
//	SAGITTARIUS_TEST_MYSQL_DSN   admin DSN without database, sagittarius_admin:PW@tcp(127.0.0.1:3306)/?parseTime=true&loc=UTC
//	SAGITTARIUS_ROOT             absolute path of the repository (for scripts/rabbit-node)
//
// When these are unset the tests that need them are skipped, unless
// SAGITTARIUS_REQUIRE_INFRA=1, then they fail: CI must never pass by skipping.
//
// Every resource is removed in t.Cleanup. Helpers call t.Fatal on error, so
// call them from the goroutine running the test.
package testinfra

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// Names of the environment variables read by this package.
const (
	EnvAMQPURL      = "SAGITTARIUS_TEST_AMQP_URL"
	EnvRabbitAPI    = "SAGITTARIUS_TEST_RABBIT_API"
	EnvMySQLDSN     = "SAGITTARIUS_TEST_MYSQL_DSN"
	EnvRoot         = "SAGITTARIUS_ROOT"
	EnvRequireInfra = "SAGITTARIUS_REQUIRE_INFRA"
)

// Env is the test environment exported by scripts/test.
type Env struct {
	AMQPURL   string // admin URL without vhost, ending in "/"
	RabbitAPI string // management API base URL with admin credentials, no trailing "/"
	MySQLDSN  string // admin DSN without database
	Root      string // repository root
}

// RequireInfra returns the test environment. When one of the variables is
// unset it skips the test, or fails it when SAGITTARIUS_REQUIRE_INFRA=1.
func RequireInfra(t testing.TB) Env {
	t.Helper()
	e := Env{
		AMQPURL:   os.Getenv(EnvAMQPURL),
		RabbitAPI: strings.TrimRight(os.Getenv(EnvRabbitAPI), "/"),
		MySQLDSN:  os.Getenv(EnvMySQLDSN),
		Root:      os.Getenv(EnvRoot),
	}
	var missing []string
	for _, v := range []struct{ name, val string }{
		{EnvAMQPURL, e.AMQPURL}, {EnvRabbitAPI, e.RabbitAPI}, {EnvMySQLDSN, e.MySQLDSN},
	} {
		if v.val == "" {
			missing = append(missing, v.name)
		}
	}
	if len(missing) > 0 {
		msg := strings.Join(missing, ", ") + " not set: run scripts/test, or `set -a; . .data/env/test.env; set +a` after scripts/infra-up"
		if os.Getenv(EnvRequireInfra) == "1" {
			t.Fatalf("%s=1 but %s", EnvRequireInfra, msg)
		}
		t.Skip(msg)
	}
	if !strings.HasSuffix(e.AMQPURL, "/") {
		e.AMQPURL += "/"
	}
	if e.Root == "" {
		e.Root = sourceRoot()
	}
	return e
}

// sourceRoot is the repository root as seen from this file at build time.
func sourceRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// randomHex returns n random bytes as hex.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b)
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9]+`)

// uniqueName returns prefix, a readable form of the test name and a random
// suffix, at most max characters, made of [a-z0-9] and sep.
func uniqueName(t testing.TB, prefix, sep string, max int) string {
	suffix := sep + randomHex(5)
	base := strings.Trim(unsafeChars.ReplaceAllString(strings.ToLower(t.Name()), sep), sep)
	if room := max - len(prefix) - len(sep) - len(suffix); len(base) > room {
		base = base[:room]
	}
	return prefix + sep + base + suffix
}
