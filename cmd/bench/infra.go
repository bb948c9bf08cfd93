package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
)

func randomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newVhost creates a throw-away vhost with full permissions for the admin
// user and returns its AMQP URL and a function deleting it.
func newVhost(ctx context.Context, cfg config) (string, func(), error) {
	name := "bench-" + randomSuffix()
	api, err := url.Parse(cfg.apiURL)
	if err != nil {
		return "", nil, err
	}
	user := api.User.Username()
	call := func(method, path, body string) error {
		req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(cfg.apiURL, "/")+path, strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 300 {
			b, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
		}
		return nil
	}
	if err := call(http.MethodPut, "/api/vhosts/"+name, "{}"); err != nil {
		return "", nil, err
	}
	if err := call(http.MethodPut, "/api/permissions/"+name+"/"+url.PathEscape(user), `{"configure":".*","write":".*","read":".*"}`); err != nil {
		return "", nil, err
	}
	cleanup := func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ctx = c
		_ = call(http.MethodDelete, "/api/vhosts/"+name, "")
	}
	return strings.TrimSuffix(cfg.amqpURL, "/") + "/" + url.PathEscape(name), cleanup, nil
}

// newDatabase creates a throw-away database and returns it with a function
// dropping it.
func newDatabase(ctx context.Context, cfg config) (*sqlx.DB, func(), error) {
	admin, err := sqlx.Open("mysql", cfg.mysqlDSN)
	if err != nil {
		return nil, nil, err
	}
	name := "bench_" + randomSuffix()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		return nil, nil, err
	}
	dsn, err := mysql.ParseDSN(cfg.mysqlDSN)
	if err != nil {
		return nil, nil, err
	}
	dsn.DBName = name
	db, err := sqlx.Open("mysql", dsn.FormatDSN())
	if err != nil {
		return nil, nil, err
	}
	return db, func() {
		db.Close()
		_, _ = admin.Exec("DROP DATABASE " + name)
		admin.Close()
	}, nil
}
