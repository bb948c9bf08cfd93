//go:build !race

package e2e

// raceEnabled: the test runs without -race; so are the services built.
const raceEnabled = false
