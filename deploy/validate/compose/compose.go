// Package compose checks that docker-compose.yml and the Prometheus
// configuration of deploy/prometheus agree with scripts/services.conf: every
// service runs its own binary on its own port, is health-checked and scraped
// there, and gets the variables it needs. It has no code outside its tests.
package compose
