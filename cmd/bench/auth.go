package main

import (
	"net/http"

	"github.com/sagittarius-a/sagittarius/internal/authclient"
)

// withToken makes c send the platform's staff token (the identity
// service's demo client, client credentials) on every request: every
// operation the benchmark drives but catalog reads needs one.
func withToken(c *http.Client, p *platform) *http.Client {
	c.Transport = &authclient.Transport{Source: p.p.StaffToken, Next: c.Transport}
	return c
}
