// Package e2e holds the end-to-end tests of Sagittarius: they build every
// service and the gateway, start them as real processes against the real
// RabbitMQ and MariaDB (a fresh vhost and fresh databases per run, made with
// internal/testinfra), and drive the order saga through the gateway only.
//
// Run them with scripts/test, or by hand after scripts/infra-up:
//
//	set -a; . .data/env/test.env; set +a
//	go test ./e2e/ -v
//
// Without the test environment they are skipped (they fail instead when
// SAGITTARIUS_REQUIRE_INFRA=1). The package has no code besides its tests.
package e2e
