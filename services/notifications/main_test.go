package main

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/sagittarius-a/sagittarius/internal/testinfra"
	"github.com/sagittarius-a/sagittarius/internal/testinfra/servicetest"
	"github.com/sagittarius-a/sagittarius/services/customers/customerevents"
	"github.com/sagittarius-a/sagittarius/services/notifications/notificationevents"
)

// TestRun runs the whole service against the real broker and database: a
// notification created over HTTP is published (notification_created, from the
// outbox), listed, paged and read; bad input gets its problem; a customer
// registered on the platform reaches the read model once, also when its
// event is delivered twice.
func TestRun(t *testing.T) {
	s := servicetest.Start(t, run, notificationevents.Service)

	code, body := s.Do("POST", "/v1/notifications", `{"name":"First"}`)
	if code != http.StatusCreated {
		t.Fatalf("POST: %d %s", code, body)
	}
	var created notificationevents.Notification
	if err := json.Unmarshal(body, &created); err != nil {
		t.Fatal(err)
	}
	if created.Name != "First" || created.Links.Href("self") != "http://gw.test/notifications/v1/notifications/"+created.ID {
		t.Fatalf("created %+v", created)
	}
	var ev notificationevents.Notification
	if err := json.Unmarshal(s.WaitEvent(notificationevents.NotificationCreated.Type(), "notification", nil), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.ID != created.ID || ev.Name != "First" {
		t.Fatalf("notification_created %+v", ev)
	}

	for _, name := range []string{"Second", "Third"} {
		if code, body := s.Do("POST", "/v1/notifications", `{"name":"`+name+`"}`); code != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", name, code, body)
		}
	}
	var page struct {
		Total    int                                          `json:"total"`
		Embedded map[string][]notificationevents.Notification `json:"_embedded"`
		Links    map[string]struct{ Href string }             `json:"_links"`
	}
	s.GetJSON("/v1/notifications?size=2&page=2", &page)
	if page.Total != 3 || len(page.Embedded["notifications"]) != 1 || page.Embedded["notifications"][0].Name != "Third" || page.Links["prev"].Href == "" {
		t.Fatalf("page 2 of size 2: %+v", page)
	}

	for _, c := range []struct {
		method, path, body string
		want               int
	}{
		{"POST", "/v1/notifications", `{"name":""}`, http.StatusUnprocessableEntity},
		{"POST", "/v1/notifications", `{"name":"x","extra":1}`, http.StatusUnprocessableEntity},
		{"GET", "/v1/notifications/00000000-0000-0000-0000-000000000000", "", http.StatusNotFound},
		{"GET", "/v1/notifications/not-an-id", "", http.StatusNotFound},
		{"GET", "/v1/notifications?size=0", "", http.StatusBadRequest},
	} {
		if code, body := s.Do(c.method, c.path, c.body); code != c.want {
			t.Errorf("%s %s %s: %d %s, want %d", c.method, c.path, c.body, code, body, c.want)
		}
	}

	registered, err := customerevents.CustomerRegistered.New(context.Background(), customerevents.Customer{ID: "c1", Name: "Ann", Version: 1})
	s.Publish(registered, err)
	s.Publish(registered, err) // redelivered
	db := testinfra.OpenDatabase(t, s.DSN)
	s.Eventually("the customer in the read model", func() bool {
		var n int
		return db.Get(&n, `SELECT COUNT(*) FROM customers WHERE id = 'c1' AND name = 'Ann'`) == nil && n == 1
	})
	var inbox int
	if err := db.Get(&inbox, `SELECT COUNT(*) FROM eventbus_inbox`); err != nil || inbox != 1 {
		t.Fatalf("%d inbox rows (%v), want the event once", inbox, err)
	}
}
