package httpapi_test

import (
	"database/sql"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/contracts/catalog"
	"github.com/sagittarius-a/sagittarius/internal/contracts/lint"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/services/identity/accountevents"
	"github.com/sagittarius-a/sagittarius/services/identity/httpapi"
	identitydb "github.com/sagittarius-a/sagittarius/services/identity/mysql"
)

// TestManifestsPassTheContractLint generates the identity service's OpenAPI
// and AsyncAPI manifests the way cmd/contracts does for the other services
// and runs the platform's lint on them. (The service is not yet listed in
// internal/contracts/platform, so cmd/contracts does not write them.)
func TestManifestsPassTheContractLint(t *testing.T) {
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.DBName = "tcp", "127.0.0.1:1", "contracts"
	conn, _ := mysql.NewConnector(cfg)
	db := sqlx.NewDb(sql.OpenDB(conn), "mysql")
	bus, err := eventbus.New(eventbus.Config{URL: "amqp://contracts:contracts@127.0.0.1:1/", Service: accountevents.Service})
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Publishes(accountevents.All...); err != nil {
		t.Fatal(err)
	}
	render := httpapi.NewRenderer(hal.MustBase("http://127.0.0.1:8080"))
	store, err := identitydb.New(db, render.Account, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := contracts.Generate(httpapi.New(store, render, nil).Contract(bus))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range lint.OpenAPI("openapi/identity.yaml", m.OpenAPI) {
		t.Errorf("openapi: %s", f)
	}
	doc, err := catalog.Parse("identity", m.AsyncAPI)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range lint.AsyncAPI("asyncapi/identity.yaml", doc) {
		t.Errorf("asyncapi: %s", f)
	}
}
