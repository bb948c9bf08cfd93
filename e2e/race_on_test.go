//go:build race

package e2e

// raceEnabled: the test runs with -race, so the services are built with it
// too, and a data race in any of them fails the test (exit code 66).
const raceEnabled = true
