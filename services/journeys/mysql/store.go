// Package mysql stores the journeys of ops.journeys in MySQL/MariaDB.
//
// Three tables: journey_events (every event once, by uuid, with its journey),
// journey_ids (the business ids found in each journey's events) and journeys
// (one row per journey with its derived status). A journey's status is never
// updated step by step: it is derived again (journey.Catalog.Derive) from all
// its events and those of the journeys sharing its subject, under row locks,
// whenever one of them receives an event and when its next deadline passes.
// A journey that becomes stuck, or stops being stuck, enqueues journey_stuck or
// journey_resumed in the same transaction (eventbus.Emit).
package mysql

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
	"github.com/sagittarius-a/sagittarius/services/journeys/journey"
	"github.com/sagittarius-a/sagittarius/services/journeys/journeyevents"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations are the service's goose migrations, for the service kit
// (service.Spec.Migrations), which applies them with the bus tables.
var Migrations = mysqldb.Migrations(migrations, "migrations")

// Renderer turns a journey into its REST model (without timeline): the entity
// of journey_stuck and journey_resumed. httpapi.Renderer.Summary is the one
// main uses.
type Renderer func(journey.Journey) journeyevents.Journey

// Store is the journeys database. It is safe for concurrent use.
type Store struct {
	db       *sqlx.DB
	catalog  *journey.Catalog
	render   Renderer
	notify   func()
	subjects []string // the id kinds journeys share (the definitions' subjects)
}

var (
	_ journey.Store     = (*Store)(nil)
	_ journey.Rechecker = (*Store)(nil)
)

// NewStore returns a Store on db following the journeys of catalog. render
// builds event entities; notify is called after a commit of Recheck that
// enqueued an event (eventbus.Relay.Notify) and may be nil.
func NewStore(db *sqlx.DB, catalog *journey.Catalog, render Renderer, notify func()) (*Store, error) {
	if db == nil || catalog == nil || render == nil {
		return nil, errors.New("mysql: NewStore needs a database, a catalog and a renderer")
	}
	if notify == nil {
		notify = func() {}
	}
	s := &Store{db: db, catalog: catalog, render: render, notify: notify}
	for _, d := range catalog.Definitions {
		if d.Subject != "" && !contains(s.subjects, d.Subject) {
			s.subjects = append(s.subjects, d.Subject)
		}
	}
	return s, nil
}

// maxID is the longest correlation id kept as a journey id; an event without
// a correlation id, or with a longer one, is a journey of its own (its uuid).
const maxID = 200

// JourneyID returns the journey an event with this correlation id and uuid
// belongs to.
func JourneyID(correlationID, uuid string) string {
	if correlationID == "" || len(correlationID) > maxID {
		return uuid
	}
	return correlationID
}

// Record adds the event r to its journey in tx (the transaction of the
// event's handler, guarded by the inbox) and derives again that journey and
// every journey sharing its subject. An event already recorded (same uuid)
// changes nothing.
func (s *Store) Record(ctx context.Context, tx *sqlx.Tx, r journey.Received) error {
	id := JourneyID(r.CorrelationID, r.UUID)
	now := time.Now().UTC()
	res, err := tx.ExecContext(ctx, `INSERT INTO journey_events
		(uuid, journey_id, type, publisher, fired_at, causation_id, actor, trace_id, entity_key, received_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE uuid = uuid`,
		r.UUID, id, cut(r.Type, 200), cut(r.Publisher, 100), r.FiredAt.UTC(), cut(r.CausationID, 64),
		cut(r.Actor, 200), r.TraceID, cut(r.EntityKey, 64), now)
	if err != nil {
		return fmt.Errorf("record event %s: %w", r.UUID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return nil
	}
	for kind, value := range s.catalog.IDs(r.EntityKey, r.Entity) {
		if len(value) > maxID {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO journey_ids (kind, value, journey_id) VALUES (?, ?, ?)
			ON DUPLICATE KEY UPDATE kind = kind`, kind, value, id); err != nil {
			return fmt.Errorf("record ids of %s: %w", r.UUID, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO journeys (id, state, waiting, started_at, updated_at, links)
		VALUES (?, ?, '[]', ?, ?, '{}') ON DUPLICATE KEY UPDATE id = id`,
		id, journey.StateUntracked, r.FiredAt.UTC(), r.FiredAt.UTC()); err != nil {
		return fmt.Errorf("create journey %s: %w", id, err)
	}
	related, err := s.lockRelated(ctx, tx, id)
	if err != nil {
		return err
	}
	// Every lock is held: from here on, plain reads see every committed
	// event of these journeys (the transaction's snapshot starts now).
	if links := s.catalog.Links(r.EntityKey, r.Entity); len(links) > 0 {
		var raw string
		if err := tx.GetContext(ctx, &raw, `SELECT links FROM journeys WHERE id = ?`, id); err != nil {
			return fmt.Errorf("read links of %s: %w", id, err)
		}
		merged := map[string]string{}
		_ = json.Unmarshal([]byte(raw), &merged)
		for rel, href := range links {
			merged[rel] = href
		}
		b, _ := json.Marshal(merged)
		if _, err := tx.ExecContext(ctx, `UPDATE journeys SET links = ? WHERE id = ?`, string(b), id); err != nil {
			return fmt.Errorf("save links of %s: %w", id, err)
		}
	}
	for _, j := range related {
		if _, err := s.derive(ctx, tx, j, now); err != nil {
			return err
		}
	}
	return nil
}

// lockRelated locks, in id order, the journey id and every journey sharing a
// subject id with it, and returns their ids. It reads only with locking
// reads, so that the transaction's snapshot is taken after the locks.
func (s *Store) lockRelated(ctx context.Context, tx *sqlx.Tx, id string) ([]string, error) {
	ids := []string{id}
	if len(s.subjects) > 0 {
		q, args, err := sqlx.In(`SELECT kind, value FROM journey_ids WHERE journey_id = ? AND kind IN (?) FOR UPDATE`, id, s.subjects)
		if err != nil {
			return nil, err
		}
		var subj []struct {
			Kind  string `db:"kind"`
			Value string `db:"value"`
		}
		if err := tx.SelectContext(ctx, &subj, tx.Rebind(q), args...); err != nil {
			return nil, fmt.Errorf("subjects of %s: %w", id, err)
		}
		for _, sv := range subj {
			var others []string
			if err := tx.SelectContext(ctx, &others, `SELECT journey_id FROM journey_ids WHERE kind = ? AND value = ? FOR UPDATE`, sv.Kind, sv.Value); err != nil {
				return nil, fmt.Errorf("journeys of %s %s: %w", sv.Kind, sv.Value, err)
			}
			for _, o := range others {
				if !contains(ids, o) {
					ids = append(ids, o)
				}
			}
		}
	}
	sort.Strings(ids)
	q, args, err := sqlx.In(`SELECT id FROM journeys WHERE id IN (?) ORDER BY id FOR UPDATE`, ids)
	if err != nil {
		return nil, err
	}
	var locked []string
	if err := tx.SelectContext(ctx, &locked, tx.Rebind(q), args...); err != nil {
		return nil, fmt.Errorf("lock journeys: %w", err)
	}
	return locked, nil
}

type journeyRow struct {
	ID         string       `db:"id"`
	Kind       string       `db:"kind"`
	State      string       `db:"state"`
	StuckStep  string       `db:"stuck_step"`
	Waiting    string       `db:"waiting"`
	Since      sql.NullTime `db:"since"`
	Deadline   sql.NullTime `db:"deadline"`
	StartedAt  time.Time    `db:"started_at"`
	UpdatedAt  time.Time    `db:"updated_at"`
	EventCount int          `db:"event_count"`
	TraceID    string       `db:"trace_id"`
	Links      string       `db:"links"`
	Publishers string       `db:"publishers"`
	Version    int64        `db:"version"`
}

const journeyColumns = `id, kind, state, stuck_step, waiting, since, deadline, started_at, updated_at,
	event_count, trace_id, links, publishers, version`

type eventRow struct {
	UUID        string    `db:"uuid"`
	JourneyID   string    `db:"journey_id"`
	Type        string    `db:"type"`
	Publisher   string    `db:"publisher"`
	FiredAt     time.Time `db:"fired_at"`
	CausationID string    `db:"causation_id"`
	Actor       string    `db:"actor"`
	TraceID     string    `db:"trace_id"`
	EntityKey   string    `db:"entity_key"`
}

const eventColumns = `uuid, journey_id, type, publisher, fired_at, causation_id, actor, trace_id, entity_key`

func (e eventRow) event() journey.Event {
	return journey.Event{UUID: e.UUID, Type: e.Type, Publisher: e.Publisher, FiredAt: e.FiredAt.UTC(),
		CausationID: e.CausationID, Actor: e.Actor, TraceID: e.TraceID, EntityKey: e.EntityKey}
}

func (r journeyRow) journey() journey.Journey {
	j := journey.Journey{ID: r.ID, StartedAt: r.StartedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), EventCount: r.EventCount,
		TraceID: r.TraceID, Version: r.Version, Links: map[string]string{}}
	j.Kind, j.State, j.StuckStep = r.Kind, r.State, r.StuckStep
	_ = json.Unmarshal([]byte(r.Waiting), &j.Waiting)
	if r.Since.Valid {
		j.Since = r.Since.Time.UTC()
	}
	if r.Deadline.Valid {
		j.Deadline = r.Deadline.Time.UTC()
	}
	_ = json.Unmarshal([]byte(r.Links), &j.Links)
	if r.Publishers != "" {
		j.Publishers = strings.Split(r.Publishers, ",")
	}
	return j
}

// derive derives journey id again at now from its events and its subject's,
// saves what changed and enqueues journey_stuck or journey_resumed when it
// became stuck or stopped being stuck. It reports whether it enqueued an
// event. The journey's row must be locked by tx.
func (s *Store) derive(ctx context.Context, tx *sqlx.Tx, id string, now time.Time) (bool, error) {
	var row journeyRow
	if err := tx.GetContext(ctx, &row, `SELECT `+journeyColumns+` FROM journeys WHERE id = ?`, id); err != nil {
		return false, fmt.Errorf("read journey %s: %w", id, err)
	}
	var own []eventRow
	if err := tx.SelectContext(ctx, &own, `SELECT `+eventColumns+` FROM journey_events WHERE journey_id = ?`, id); err != nil {
		return false, fmt.Errorf("events of %s: %w", id, err)
	}
	var history []eventRow
	if len(s.subjects) > 0 {
		q, args, err := sqlx.In(`SELECT `+eventColumns+` FROM journey_events WHERE journey_id IN (
			SELECT b.journey_id FROM journey_ids a JOIN journey_ids b ON b.kind = a.kind AND b.value = a.value
			WHERE a.journey_id = ? AND a.kind IN (?)) AND journey_id <> ?`, id, s.subjects, id)
		if err != nil {
			return false, err
		}
		if err := tx.SelectContext(ctx, &history, tx.Rebind(q), args...); err != nil {
			return false, fmt.Errorf("history of %s: %w", id, err)
		}
	}
	events := make([]journey.Event, len(own))
	for i, e := range own {
		events[i] = e.event()
	}
	hist := make([]journey.Event, len(history))
	for i, e := range history {
		hist[i] = e.event()
	}
	journey.Sort(events)
	st := s.catalog.Derive(events, hist, now)

	before := row.journey()
	after := before
	after.Status = st
	after.EventCount = len(events)
	after.Publishers, after.TraceID = nil, ""
	if len(events) > 0 {
		after.StartedAt, after.UpdatedAt = events[0].FiredAt, events[len(events)-1].FiredAt
	}
	for _, e := range events {
		if !contains(after.Publishers, e.Publisher) {
			after.Publishers = append(after.Publishers, e.Publisher)
		}
		if after.TraceID == "" {
			after.TraceID = e.TraceID
		}
	}
	sort.Strings(after.Publishers)
	if fingerprint(before) == fingerprint(after) {
		return false, nil
	}
	after.Version++
	waiting, _ := json.Marshal(after.Waiting)
	if _, err := tx.ExecContext(ctx, `UPDATE journeys SET kind = ?, state = ?, stuck_step = ?, waiting = ?, since = ?, deadline = ?,
		started_at = ?, updated_at = ?, event_count = ?, trace_id = ?, publishers = ?, version = ? WHERE id = ?`,
		after.Kind, after.State, after.StuckStep, string(waiting), nullTime(after.Since), nullTime(after.Deadline),
		after.StartedAt, after.UpdatedAt, after.EventCount, after.TraceID, cut(strings.Join(after.Publishers, ","), 1000),
		after.Version, id); err != nil {
		return false, fmt.Errorf("save journey %s: %w", id, err)
	}
	var et *eventbus.EventType[journeyevents.Journey]
	switch {
	case before.State != journey.StateStuck && after.State == journey.StateStuck:
		et = &journeyevents.JourneyStuck
	case before.State == journey.StateStuck && after.State != journey.StateStuck:
		et = &journeyevents.JourneyResumed
	default:
		return false, nil
	}
	var err error
	if after.IDs, err = idsOf(ctx, tx, []string{id}); err != nil {
		return false, err
	}
	ectx := eventbus.WithCorrelationID(ctx, id)
	if after.TraceID != "" {
		ectx = eventbus.WithTraceparent(ectx, "00-"+after.TraceID+"-0000000000000001-01")
	}
	msg, err := et.New(ectx, s.render(after))
	if err != nil {
		return false, err
	}
	if err := eventbus.Enqueue(ectx, tx, msg); err != nil {
		return false, fmt.Errorf("emit %s: %w", et.Type(), err)
	}
	// The bus does not hand a service its own events: the journey's timeline
	// gets its own event here. It changes no state (no step names it).
	if _, err := tx.ExecContext(ctx, `INSERT INTO journey_events
		(uuid, journey_id, type, publisher, fired_at, causation_id, actor, trace_id, entity_key, received_at)
		VALUES (?, ?, ?, ?, ?, ?, '', ?, 'journey', ?)`,
		msg.ID, id, msg.Type, msg.AppID, msg.FiredAt, cut(msg.Headers[eventbus.HeaderCausationID], 64),
		journey.TraceID(msg.Headers[eventbus.HeaderTraceparent]), now); err != nil {
		return false, fmt.Errorf("record %s in its journey: %w", msg.Type, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE journeys SET event_count = event_count + 1, updated_at = GREATEST(updated_at, ?), version = version + 1 WHERE id = ?`, msg.FiredAt, id); err != nil {
		return false, fmt.Errorf("count %s in its journey: %w", msg.Type, err)
	}
	return true, nil
}

// idsOf returns the business ids of the journeys ids (kind -> sorted values),
// merged.
func idsOf(ctx context.Context, q sqlx.QueryerContext, ids []string) (map[string][]string, error) {
	byJourney, err := idsByJourney(ctx, q, ids)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, m := range byJourney {
		for k, vs := range m {
			out[k] = append(out[k], vs...)
		}
	}
	return out, nil
}

func idsByJourney(ctx context.Context, q sqlx.QueryerContext, ids []string) (map[string]map[string][]string, error) {
	out := map[string]map[string][]string{}
	if len(ids) == 0 {
		return out, nil
	}
	query, args, err := sqlx.In(`SELECT journey_id, kind, value FROM journey_ids WHERE journey_id IN (?) ORDER BY journey_id, kind, value`, ids)
	if err != nil {
		return nil, err
	}
	var rows []struct {
		JourneyID string `db:"journey_id"`
		Kind      string `db:"kind"`
		Value     string `db:"value"`
	}
	if err := sqlx.SelectContext(ctx, q, &rows, query, args...); err != nil {
		return nil, fmt.Errorf("business ids: %w", err)
	}
	for _, r := range rows {
		if out[r.JourneyID] == nil {
			out[r.JourneyID] = map[string][]string{}
		}
		out[r.JourneyID][r.Kind] = append(out[r.JourneyID][r.Kind], r.Value)
	}
	return out, nil
}

// Get returns journey id with its timeline, or journey.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (journey.Journey, error) {
	var row journeyRow
	err := s.db.GetContext(ctx, &row, `SELECT `+journeyColumns+` FROM journeys WHERE id = ?`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return journey.Journey{}, journey.ErrNotFound
	}
	if err != nil {
		return journey.Journey{}, fmt.Errorf("read journey: %w", err)
	}
	j := row.journey()
	var evs []eventRow
	if err := s.db.SelectContext(ctx, &evs, `SELECT `+eventColumns+` FROM journey_events WHERE journey_id = ?`, id); err != nil {
		return journey.Journey{}, fmt.Errorf("read timeline: %w", err)
	}
	for _, e := range evs {
		j.Events = append(j.Events, e.event())
	}
	journey.Sort(j.Events)
	if j.IDs, err = idsOf(ctx, s.db, []string{id}); err != nil {
		return journey.Journey{}, err
	}
	return j, nil
}

// List returns a page of the journeys matching f, most recently started
// first, and the number of matches.
func (s *Store) List(ctx context.Context, f journey.Filter) ([]journey.Journey, int, error) {
	var where []string
	var args []any
	if f.State != "" {
		where = append(where, "state = ?")
		args = append(args, f.State)
	}
	for kind, value := range map[string]string{"order_id": f.OrderID, "customer_id": f.CustomerID} {
		if value != "" {
			where = append(where, "id IN (SELECT journey_id FROM journey_ids WHERE kind = ? AND value = ?)")
			args = append(args, kind, value)
		}
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	var total int
	if err := s.db.GetContext(ctx, &total, `SELECT COUNT(*) FROM journeys`+cond, args...); err != nil {
		return nil, 0, fmt.Errorf("count journeys: %w", err)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 20
	}
	var rows []journeyRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+journeyColumns+` FROM journeys`+cond+
		` ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?`, append(args, limit, f.Offset)...); err != nil {
		return nil, 0, fmt.Errorf("list journeys: %w", err)
	}
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	byJourney, err := idsByJourney(ctx, s.db, ids)
	if err != nil {
		return nil, 0, err
	}
	out := make([]journey.Journey, len(rows))
	for i, r := range rows {
		out[i] = r.journey()
		out[i].IDs = byJourney[r.ID]
	}
	return out, total, nil
}

// Recheck derives again, each in a transaction of its own, the journeys
// whose next deadline is not after now (they may have become stuck), and
// returns how many journeys are stuck, by the step that overran.
func (s *Store) Recheck(ctx context.Context, now time.Time) (map[string]int, error) {
	var due []string
	if err := s.db.SelectContext(ctx, &due, `SELECT id FROM journeys WHERE deadline <= ? ORDER BY deadline LIMIT 1000`, now.UTC()); err != nil {
		return nil, fmt.Errorf("journeys due: %w", err)
	}
	for _, id := range due {
		emitted := false
		err := mysqldb.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
			var locked []string
			if err := tx.SelectContext(ctx, &locked, `SELECT id FROM journeys WHERE id = ? FOR UPDATE`, id); err != nil {
				return err
			}
			var err error
			emitted, err = s.derive(ctx, tx, id, now)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("recheck journey %s: %w", id, err)
		}
		if emitted {
			s.notify()
		}
	}
	var counts []struct {
		Step string `db:"stuck_step"`
		N    int    `db:"n"`
	}
	if err := s.db.SelectContext(ctx, &counts, `SELECT stuck_step, COUNT(*) AS n FROM journeys WHERE state = ? GROUP BY stuck_step`, journey.StateStuck); err != nil {
		return nil, fmt.Errorf("count stuck journeys: %w", err)
	}
	out := map[string]int{}
	for _, c := range counts {
		out[c.Step] = c.N
	}
	return out, nil
}

// fingerprint is what derive saves of a journey, comparable.
func fingerprint(j journey.Journey) string {
	if len(j.Waiting) == 0 {
		j.Waiting = nil
	}
	b, _ := json.Marshal(struct {
		S    journey.Status
		A, U time.Time
		N    int
		T    string
		P    []string
	}{j.Status, j.StartedAt.UTC(), j.UpdatedAt.UTC(), j.EventCount, j.TraceID, j.Publishers})
	return string(b)
}

// Purge deletes up to limit journeys that started before before and are
// neither in progress nor stuck, with their events and business ids, in one
// transaction, and returns how many.
func (s *Store) Purge(ctx context.Context, before time.Time, limit int) (int, error) {
	n := 0
	err := mysqldb.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		var ids []string
		if err := tx.SelectContext(ctx, &ids, `SELECT id FROM journeys WHERE started_at < ? AND state NOT IN (?, ?)
			ORDER BY started_at LIMIT ? FOR UPDATE`, before.UTC(), journey.StateInProgress, journey.StateStuck, limit); err != nil {
			return err
		}
		n = len(ids)
		if n == 0 {
			return nil
		}
		for _, table := range []string{"journey_events WHERE journey_id", "journey_ids WHERE journey_id", "journeys WHERE id"} {
			q, args, err := sqlx.In(`DELETE FROM `+table+` IN (?)`, ids)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("purge journeys: %w", err)
	}
	return n, nil
}

func nullTime(t time.Time) sql.NullTime {
	if t.IsZero() {
		return sql.NullTime{}
	}
	return sql.NullTime{Time: t.UTC(), Valid: true}
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
