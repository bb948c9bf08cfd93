package mysql_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
	"github.com/sagittarius-a/sagittarius/services/notifications/httpapi"
	"github.com/sagittarius-a/sagittarius/services/notifications/mysql"
	"github.com/sagittarius-a/sagittarius/services/notifications/notification"
)

// newStore returns a Store on a fresh, migrated database of the test MariaDB
// and the number of times it woke the relay.
func newStore(t *testing.T) (*mysql.Store, *sqlx.DB, *int) {
	t.Helper()
	db := testinfra.NewMigratedDatabase(t, 10, mysql.Migrate)
	notified := new(int)
	s, err := mysql.NewStore(db, httpapi.NewRenderer(hal.MustBase("http://gw.test")).Notification, func() { *notified++ })
	if err != nil {
		t.Fatal(err)
	}
	return s, db, notified
}

func newNotification(t *testing.T, name string, at time.Time) notification.Notification {
	t.Helper()
	w, err := notification.New(uuid.NewString(), name, at)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestCreateEnqueuesItsEvent: the row and its notification_created are one
// transaction, and the relay is woken after it.
func TestCreateEnqueuesItsEvent(t *testing.T) {
	s, db, notified := newStore(t)
	ctx := context.Background()
	w := newNotification(t, "First", time.Now())
	if err := s.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, w.ID)
	if err != nil || got.Name != "First" || got.Version != 1 {
		t.Fatalf("Get: %+v %v", got, err)
	}
	var evs []struct {
		Type string `db:"type"`
		Body []byte `db:"body"`
	}
	if err := db.Select(&evs, `SELECT type, body FROM eventbus_outbox`); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Type != "crm.notifications.notification_created" || *notified != 1 {
		t.Fatalf("outbox %+v, relay woken %d times", evs, *notified)
	}
	var payload map[string]json.RawMessage
	if err := json.Unmarshal(evs[0].Body, &payload); err != nil || payload["notification"] == nil || payload["uuid"] == nil {
		t.Fatalf("payload %s (%v)", evs[0].Body, err)
	}
	if _, err := s.Get(ctx, uuid.NewString()); !errors.Is(err, notification.ErrNotFound) {
		t.Fatalf("Get of an unknown id: %v", err)
	}
}

// TestListPages: oldest first, pages of Limit from Offset, the total of all.
func TestListPages(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	start := time.Now()
	for i, name := range []string{"a", "b", "c"} {
		if err := s.Create(ctx, newNotification(t, name, start.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	got, total, err := s.List(ctx, notification.Filter{Limit: 2, Offset: 1})
	if err != nil || total != 3 || len(got) != 2 || got[0].Name != "b" || got[1].Name != "c" {
		t.Fatalf("List: %+v total %d %v", got, total, err)
	}
}

// TestRecordCustomerKeepsTheNewest: versions arriving late, twice or out of
// order leave the newest in the read model.
func TestRecordCustomerKeepsTheNewest(t *testing.T) {
	s, db, _ := newStore(t)
	ctx := context.Background()
	for i, c := range []struct {
		name    string
		version int64
		changed bool
	}{{"v2", 2, true}, {"v1", 1, false}, {"v2", 2, false}, {"v3", 3, true}} {
		var changed bool
		err := mysqldb.InTx(ctx, db, func(tx *sqlx.Tx) error {
			var err error
			changed, err = s.RecordCustomer(ctx, tx, "c1", c.name, c.version)
			return err
		})
		if err != nil || changed != c.changed {
			t.Fatalf("RecordCustomer #%d (%s): changed %v %v, want %v", i+1, c.name, changed, err, c.changed)
		}
	}
	name, version, found, err := s.Customer(ctx, "c1")
	if err != nil || !found || name != "v3" || version != 3 {
		t.Fatalf("Customer: %q %d %v %v", name, version, found, err)
	}
	if _, _, found, err := s.Customer(ctx, "c2"); err != nil || found {
		t.Fatalf("Customer of an unknown id: found %v %v", found, err)
	}
}
