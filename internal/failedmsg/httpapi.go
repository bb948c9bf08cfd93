package failedmsg

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/swaggest/jsonschema-go"

	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/problem"
)

// Limits and defaults of retry operations.
const (
	DefaultBatchSize = 50
	MaxBatchSize     = 500
	DefaultRate      = 100.0 // messages per second
	MaxRate          = 10000.0
	MaxRetryIDs      = 1000
)

// ActorPlaceholder is the actor recorded when a request carries no verified
// principal (never through the kit, which requires the operator role on every
// route: only direct calls in tests). See Identify.
const ActorPlaceholder = "unauthenticated-operator"

// Identify returns who makes request r, for the audit log.
//
// Every route of Routes requires the role operator (the kit's Guard answers
// 401 without a token and 403 without the role); the actor recorded is the
// verified subject, with the request id.
func Identify(r *http.Request) Identity {
	id := Identity{Actor: ActorPlaceholder, RequestID: httpkit.RequestIDFrom(r.Context())}
	if p, ok := auth.FromContext(r.Context()); ok && p.Subject != "" {
		id.Actor = p.Subject // the verified operator (the kit's Guard)
	}
	return id
}

// API serves a service's failed messages as HAL resources under its /v1.
type API struct {
	keeper    *Keeper
	store     *Store
	api       hal.Base // <public>/<dir>/v1
	logger    *slog.Logger
	allowEdit bool
}

// NewAPI returns the API of keeper's store, with links on api (the
// service's absolute API base, e.g. base.Join("orders", "v1")). allowEdit
// lets operators replace a payload before a retry (PATCH with "payload"; the
// kit sets it from FAILED_MESSAGES_ALLOW_EDIT=1); off, such a PATCH is a 422.
func NewAPI(keeper *Keeper, api hal.Base, logger *slog.Logger, allowEdit bool) *API {
	if logger == nil {
		logger = slog.Default()
	}
	return &API{keeper: keeper, store: keeper.store, api: api, logger: logger, allowEdit: allowEdit}
}

// FailedMessage is the REST model of a failed message. In a collection the
// message's headers and payload are left out; GET of the item has them.
type FailedMessage struct {
	ID            string     `json:"id" format:"uuid" description:"the failed message's id (not the event's)"`
	MessageID     string     `json:"message_id" description:"the message_id property: the event's uuid when well formed"`
	Type          string     `json:"type" description:"the type property"`
	Publisher     string     `json:"publisher" description:"the app_id property"`
	Status        string     `json:"status" enum:"unresolved,retrying,resolved,archived"`
	Reason        string     `json:"reason" description:"why the handler failed (or the broker dead-lettered it), as it said the last time"`
	Fingerprint   string     `json:"fingerprint" description:"the failure group: a hash of the type and the normalised reason"`
	Malformed     string     `json:"malformed,omitempty" description:"what makes the message malformed; such a message can be archived, never retried"`
	Retryable     bool       `json:"retryable" description:"whether a retry operation may select it now (unresolved and well formed)"`
	Attempts      int        `json:"attempts" description:"handler attempts over every dead-lettering"`
	DeadLetters   int        `json:"dead_letters" description:"how many times it was dead-lettered"`
	Retries       int        `json:"retries" description:"how many times a retry operation republished it"`
	FirstFailedAt time.Time  `json:"first_failed_at"`
	LastFailedAt  time.Time  `json:"last_failed_at"`
	RetriedAt     *time.Time `json:"retried_at,omitempty"`
	ResolvedAt    *time.Time `json:"resolved_at,omitempty"`
	CorrelationID string     `json:"correlation_id,omitempty"`
	TraceID       string     `json:"trace_id,omitempty" description:"the W3C trace id of its traceparent"`
	Version       int64      `json:"version"`
	// Only in the item:
	Properties  *Properties `json:"properties,omitempty" description:"the AMQP properties it was received with (item only)"`
	Headers     Headers     `json:"headers,omitempty" description:"the AMQP headers of its last dead-lettering (item only)"`
	Payload     Payload     `json:"payload,omitempty" description:"the body, when it is JSON (item only)"`
	PayloadText string      `json:"payload_text,omitempty" description:"the body as text when it is not JSON (base64: prefix when not UTF-8) (item only)"`
	// OriginalPayload is the payload as dead-lettered, when it was edited (item only).
	OriginalPayload Payload   `json:"original_payload,omitempty" description:"the payload as dead-lettered, when an operator edited it (item only)"`
	Edited          bool      `json:"edited" description:"whether an operator replaced the payload (FAILED_MESSAGES_ALLOW_EDIT)"`
	Links           hal.Links `json:"_links" links:"self,group,failed-messages"`
}

// Headers are a message's AMQP headers as JSON values.
type Headers map[string]any

// JSONSchema documents Headers: an object of any values, with an example.
func (Headers) JSONSchema() (jsonschema.Schema, error) {
	var s jsonschema.Schema
	s.AddType(jsonschema.Object)
	s.WithAdditionalProperties(jsonschema.SchemaOrBool{TypeBoolean: ptr(true)})
	s.WithExamples(map[string]any{
		"correlation_id": "0b6f7c1e-2d4a-4e8b-9c3f-5a1d2e3f4a5b", "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"x-attempt": 5, "x-dead-letter-reason": "handler failed 5 times, last error: provider unavailable",
		"x-dead-lettered-at": "2026-11-22T10:00:00.000Z",
	})
	return s, nil
}

// Payload is a message body that is JSON, written as it was received.
type Payload json.RawMessage

// MarshalJSON writes the body itself.
func (p Payload) MarshalJSON() ([]byte, error) {
	if len(p) == 0 {
		return []byte("null"), nil
	}
	return p, nil
}

// UnmarshalJSON keeps the JSON value as it is (for clients of the API).
func (p *Payload) UnmarshalJSON(b []byte) error {
	*p = append((*p)[:0], b...)
	return nil
}

// JSONSchema documents Payload: any JSON value, with an example.
func (Payload) JSONSchema() (jsonschema.Schema, error) {
	var s jsonschema.Schema
	s.WithExamples(map[string]any{"uuid": "0b6f7c1e-2d4a-4e8b-9c3f-5a1d2e3f4a5b", "fired_at": "2026-11-22T10:00:00.000Z", "order": map[string]any{"id": "…"}})
	return s, nil
}

func ptr[T any](v T) *T { return &v }

// Properties are a failed message's AMQP properties.
type Properties struct {
	MessageID   string     `json:"message_id"`
	Type        string     `json:"type"`
	AppID       string     `json:"app_id"`
	ContentType string     `json:"content_type"`
	Timestamp   *time.Time `json:"timestamp,omitempty"`
}

// FailedMessageGroup is the REST model of a group of failed messages.
type FailedMessageGroup struct {
	Fingerprint   string    `json:"fingerprint"`
	Type          string    `json:"type"`
	Reason        string    `json:"reason" description:"the reason of the group's latest failure"`
	Count         int       `json:"count" description:"messages in the group, whatever their status"`
	Unresolved    int       `json:"unresolved" description:"messages in the group waiting for an operator"`
	FirstFailedAt time.Time `json:"first_failed_at"`
	LastFailedAt  time.Time `json:"last_failed_at"`
	Links         hal.Links `json:"_links" links:"self,failed-messages"`
}

// FailedMessageRetry is the REST model of a retry operation.
type FailedMessageRetry struct {
	ID            string         `json:"id" format:"uuid"`
	Status        string         `json:"status" enum:"running,completed,interrupted"`
	Group         string         `json:"group,omitempty" description:"the fingerprint, for a retry of a group"`
	SelectedIDs   int            `json:"selected_ids,omitempty" description:"how many ids were selected, for a retry of a selection"`
	BatchSize     int            `json:"batch_size"`
	RatePerSecond float64        `json:"rate_per_second"`
	Total         int            `json:"total"`
	Done          int            `json:"done"`
	Succeeded     int            `json:"succeeded" description:"republished to the service's own queue"`
	Failed        int            `json:"failed" description:"not republished (skipped or not confirmed)"`
	Restarts      int            `json:"restarts" description:"how many times it resumed after a stop"`
	Actor         string         `json:"actor"`
	RequestID     string         `json:"request_id"`
	CreatedAt     time.Time      `json:"created_at"`
	UpdatedAt     time.Time      `json:"updated_at"`
	FinishedAt    *time.Time     `json:"finished_at,omitempty"`
	Outcomes      []RetryOutcome `json:"outcomes,omitempty" description:"each message's outcome (item only)"`
	Links         hal.Links      `json:"_links" links:"self,failed-messages,group?"`
}

// RetryOutcome is the outcome of one message of a retry operation.
type RetryOutcome struct {
	FailedMessageID string    `json:"failed_message_id"`
	MessageID       string    `json:"message_id"`
	Outcome         string    `json:"outcome" enum:"pending,publishing,republished,skipped,failed"`
	Detail          string    `json:"detail,omitempty"`
	Links           hal.Links `json:"_links" links:"failed-message"`
}

// FailedMessageAction is one entry of the audit log.
type FailedMessageAction struct {
	ID        int64     `json:"id"`
	At        time.Time `json:"at"`
	Actor     string    `json:"actor" description:"who: unauthenticated-operator until the platform authenticates operators"`
	RequestID string    `json:"request_id" description:"the X-Request-Id of the request"`
	Action    string    `json:"action" enum:"retry,archive,unarchive,edit"`
	Target    string    `json:"target"`
	Count     int       `json:"count"`
	RetryID   string    `json:"retry_id,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	Links     hal.Links `json:"_links" links:"self,retry?"`
}

// retryRequest is the body of POST /v1/failed-message-retries.
type retryRequest struct {
	IDs           []string `json:"ids,omitempty" description:"failed message ids (at most 1000); or group"`
	Group         string   `json:"group,omitempty" description:"a fingerprint: every unresolved, well-formed message of the group"`
	BatchSize     *int     `json:"batch_size,omitempty" minimum:"1" maximum:"500" description:"messages republished per batch (default 50)"`
	RatePerSecond *float64 `json:"rate_per_second,omitempty" description:"at most this many messages per second (default 100, at most 10000)"`
}

// patchRequest is the body of PATCH /v1/failed-messages/{id}.
type patchRequest struct {
	Status  string  `json:"status,omitempty" enum:"archived,unresolved" description:"archived, or unresolved to unarchive"`
	Payload Payload `json:"payload,omitempty" description:"a new payload for the next retry, only where FAILED_MESSAGES_ALLOW_EDIT=1: a JSON object with the same uuid and a fired_at in the event format; the message must be unresolved and well formed. Give status or payload, not both."`
}

type listParams struct {
	contracts.PageParams
	Type   string `query:"type" description:"only messages of this event type"`
	Group  string `query:"group" description:"only messages of this failure group (fingerprint)"`
	Status string `query:"status" enum:"unresolved,retrying,resolved,archived" description:"only messages in this status"`
	From   string `query:"from" format:"date-time" description:"only messages whose last failure is at or after this time (RFC 3339)"`
	To     string `query:"to" format:"date-time" description:"only messages whose last failure is at or before this time (RFC 3339)"`
}

type groupListParams struct {
	contracts.PageParams
	Type   string `query:"type" description:"only groups of this event type"`
	Status string `query:"status" enum:"unresolved,retrying,resolved,archived" description:"only count messages in this status"`
	From   string `query:"from" format:"date-time" description:"only messages whose last failure is at or after this time"`
	To     string `query:"to" format:"date-time" description:"only messages whose last failure is at or before this time"`
}

type idParams struct {
	ID string `path:"id" format:"uuid" description:"the failed message's id"`
}

type patchParams struct {
	idParams
	contracts.IfMatch
}

type groupParams struct {
	Fingerprint string `path:"fingerprint" description:"the group's fingerprint (16 hexadecimal digits)"`
}

type actionParams struct {
	ID string `path:"id" description:"the action's number"`
}

type retryParams struct {
	ID string `path:"id" format:"uuid" description:"the retry operation's id"`
}

// Routes is the route table of the failed messages: the kit adds it to the
// service's own table, so it is served and documented like every route.
func (a *API) Routes() []contracts.Route {
	ok := func(body any, headers ...string) []contracts.Response {
		return []contracts.Response{{Status: http.StatusOK, Body: body, Headers: headers}}
	}
	const tag = "failed-messages"
	routes := []contracts.Route{
		{Method: "GET", Path: "/v1/failed-messages", Handler: a.list, ID: "listFailedMessages", Tag: tag,
			Summary:     "This service's failed (dead-lettered) messages, the latest failure first",
			Description: "Operators only (once authentication exists). Every message this service's handlers failed on for good, kept from its dead-letter queue.",
			Params:      listParams{}, Responses: ok(hal.Collection[FailedMessage]{}), Errors: []int{http.StatusBadRequest}},
		{Method: "GET", Path: "/v1/failed-messages/{id}", Handler: a.get, ID: "getFailedMessage", Tag: tag,
			Summary: "One failed message in full: properties, headers, payload", Params: idParams{},
			Responses: ok(FailedMessage{}, "ETag"), Errors: []int{http.StatusNotFound}},
		{Method: "PATCH", Path: "/v1/failed-messages/{id}", Handler: a.patch, ID: "updateFailedMessage", Tag: tag,
			Summary: "Archive a failed message, unarchive it, or edit its payload before a retry",
			Description: `{"status":"archived"} from unresolved or resolved; {"status":"unresolved"} from archived; {"payload":{…}} (only where ` +
				`FAILED_MESSAGES_ALLOW_EDIT=1, else 422) replaces the payload of an unresolved message, keeping its uuid. Recorded in the audit log.`,
			Params: patchParams{}, Body: patchRequest{}, Responses: ok(FailedMessage{}, "ETag"),
			Errors: []int{http.StatusNotFound, http.StatusConflict, http.StatusPreconditionFailed}},
		{Method: "GET", Path: "/v1/failed-message-groups", Handler: a.groups, ID: "listFailedMessageGroups", Tag: tag,
			Summary: "Failed messages grouped by failure (event type and normalised reason)", Params: groupListParams{},
			Responses: ok(hal.Collection[FailedMessageGroup]{}), Errors: []int{http.StatusBadRequest}},
		{Method: "GET", Path: "/v1/failed-message-groups/{fingerprint}", Handler: a.group, ID: "getFailedMessageGroup", Tag: tag,
			Summary: "One group of failed messages", Params: groupParams{},
			Responses: ok(FailedMessageGroup{}), Errors: []int{http.StatusNotFound}},
		{Method: "POST", Path: "/v1/failed-message-retries", Handler: a.retry, ID: "retryFailedMessages", Tag: tag,
			Summary: "Retry failed messages (a selection or a group), in the background",
			Description: `{"ids":[…]} or {"group":"<fingerprint>"}, optional "batch_size" and "rate_per_second". Each message is republished unchanged ` +
				`(same uuid: the inbox makes a second success harmless) to this service's own queue only. 202 with the operation's Location; ` +
				`malformed or non-unresolved selected messages give 409.`,
			Body: retryRequest{},
			Responses: []contracts.Response{{Status: http.StatusAccepted, Body: FailedMessageRetry{}, Headers: []string{"Location"},
				Description: "the operation was recorded and runs in the background"}},
			Errors: []int{http.StatusNotFound, http.StatusConflict}},
		{Method: "GET", Path: "/v1/failed-message-retries", Handler: a.retries, ID: "listFailedMessageRetries", Tag: tag,
			Summary: "Retry operations, the latest first", Params: contracts.PageParams{},
			Responses: ok(hal.Collection[FailedMessageRetry]{}), Errors: []int{http.StatusBadRequest}},
		{Method: "GET", Path: "/v1/failed-message-retries/{id}", Handler: a.getRetry, ID: "getFailedMessageRetry", Tag: tag,
			Summary: "A retry operation: its progress and each message's outcome", Params: retryParams{},
			Responses: ok(FailedMessageRetry{}), Errors: []int{http.StatusNotFound}},
		{Method: "GET", Path: "/v1/failed-message-actions", Handler: a.actions, ID: "listFailedMessageActions", Tag: tag,
			Summary: "The audit log of operators' actions on failed messages, the latest first", Params: contracts.PageParams{},
			Responses: ok(hal.Collection[FailedMessageAction]{}), Errors: []int{http.StatusBadRequest}},
		{Method: "GET", Path: "/v1/failed-message-actions/{id}", Handler: a.action, ID: "getFailedMessageAction", Tag: tag,
			Summary: "One action of the audit log", Params: actionParams{},
			Responses: ok(FailedMessageAction{}), Errors: []int{http.StatusNotFound}},
	}
	// Operators only: the kit verifies the token and the role on every route.
	for i := range routes {
		routes[i].Auth = auth.AnyOf(auth.RoleOperator)
	}
	return routes
}

// RootLinks are the links a service's API root carries to its failed
// messages (relation Rel), for its renderer: links[Rel] = RootLink(api).
func RootLink(api hal.Base) hal.Rel { return hal.To(api.Href("failed-messages")) }

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var conflict *ConflictError
	var invalid *InvalidError
	var p *problem.Problem
	switch {
	case errors.Is(err, ErrNotFound):
		p = problem.NotFound("no such resource")
	case errors.Is(err, ErrStale):
		p = problem.PreconditionFailed("the failed message changed since the version in If-Match")
	case errors.As(err, &conflict):
		p = problem.Conflict(conflict.Msg)
	case errors.As(err, &invalid):
		p = problem.Validation(problem.FieldError{Field: invalid.Field, Message: invalid.Msg})
	default:
		p = httpkit.ErrorProblem(a.logger, r, err)
	}
	problem.Write(w, r, p)
}

var typeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,254}$`)

// parseFilter reads type, group, status, from and to: 400 naming each bad one.
func parseFilter(q url.Values, withGroup bool) (Filter, error) {
	var f Filter
	var errs problem.Fields
	one := func(name string) string {
		vs := q[name]
		if len(vs) > 1 {
			errs.Add(name, "must be given once")
			return ""
		}
		if len(vs) == 0 {
			return ""
		}
		return vs[0]
	}
	if v := one("type"); v != "" {
		if typeRE.MatchString(v) {
			f.Type = v
		} else {
			errs.Add("type", "must be an event type such as sales.orders.order_placed")
		}
	}
	if withGroup {
		if v := one("group"); v != "" {
			if ValidFingerprint(v) {
				f.Fingerprint = v
			} else {
				errs.Add("group", "must be a fingerprint: 16 lower-case hexadecimal digits")
			}
		}
	}
	if v := one("status"); v != "" {
		if ValidStatus(v) {
			f.Status = Status(v)
		} else {
			errs.Add("status", "must be unresolved, retrying, resolved or archived")
		}
	}
	for _, tf := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := one(tf.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				errs.Add(tf.name, "must be an RFC 3339 time such as 2026-12-03T08:00:00Z")
			} else {
				*tf.dst = t
			}
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.From.After(f.To) {
		errs.Add("from", "must not be after to")
	}
	if len(errs) > 0 {
		p := problem.BadRequest("invalid filter parameters")
		p.Errors = errs
		return f, p
	}
	return f, nil
}

func (a *API) message(m Message, full bool) FailedMessage {
	out := FailedMessage{
		ID: m.ID, MessageID: m.MessageID, Type: m.Type, Publisher: m.AppID, Status: string(m.Status), Reason: m.Reason,
		Fingerprint: m.Fingerprint, Malformed: m.Malformed, Retryable: m.Malformed == "" && m.Status == Unresolved,
		Attempts: m.Attempts, DeadLetters: m.DeadLetters, Retries: m.Retries, FirstFailedAt: m.FirstFailedAt, LastFailedAt: m.LastFailedAt,
		RetriedAt: m.RetriedAt, ResolvedAt: m.ResolvedAt, CorrelationID: m.CorrelationID, TraceID: m.TraceID, Version: m.Version,
		Edited: m.OriginalBody != nil,
		Links: hal.Links{
			"self":            hal.To(a.api.Href("failed-messages", m.ID)),
			"group":           hal.To(a.api.Href("failed-message-groups", m.Fingerprint)),
			"failed-messages": hal.To(a.api.Href("failed-messages")),
		},
	}
	if full {
		out.Properties = &Properties{MessageID: m.MessageID, Type: m.Type, AppID: m.AppID, ContentType: m.ContentType, Timestamp: m.Timestamp}
		out.Headers = m.Headers
		if m.OriginalBody != nil {
			out.OriginalPayload = Payload(m.OriginalBody)
		}
		if len(m.Body) > 0 && json.Valid(m.Body) {
			out.Payload = Payload(m.Body)
		} else if utf8.Valid(m.Body) {
			out.PayloadText = string(m.Body)
		} else {
			out.PayloadText = fmt.Sprintf("base64:%x", m.Body)
		}
	}
	return out
}

func (a *API) groupModel(g Group) FailedMessageGroup {
	return FailedMessageGroup{
		Fingerprint: g.Fingerprint, Type: g.Type, Reason: g.Reason, Count: g.Count, Unresolved: g.Unresolved,
		FirstFailedAt: g.FirstFailedAt, LastFailedAt: g.LastFailedAt,
		Links: hal.Links{
			"self":            hal.To(a.api.Href("failed-message-groups", g.Fingerprint)),
			"failed-messages": hal.To(a.api.HrefQuery(url.Values{"group": {g.Fingerprint}}, "failed-messages")),
		},
	}
}

func (a *API) retryModel(r Retry) FailedMessageRetry {
	out := FailedMessageRetry{
		ID: r.ID, Status: string(r.Status), Group: r.Group, SelectedIDs: r.IDs, BatchSize: r.BatchSize, RatePerSecond: r.RatePerSecond,
		Total: r.Total, Done: r.Done, Succeeded: r.Succeeded, Failed: r.Failed, Restarts: r.Restarts, Actor: r.Actor,
		RequestID: r.RequestID, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, FinishedAt: r.FinishedAt,
		Links: hal.Links{
			"self":            hal.To(a.api.Href("failed-message-retries", r.ID)),
			"failed-messages": hal.To(a.api.Href("failed-messages")),
		},
	}
	if r.Group != "" {
		out.Links["group"] = hal.To(a.api.Href("failed-message-groups", r.Group))
	}
	for _, it := range r.Items {
		out.Outcomes = append(out.Outcomes, RetryOutcome{FailedMessageID: it.FailedMessageID, MessageID: it.MessageID,
			Outcome: it.Outcome, Detail: it.Detail,
			Links: hal.Links{"failed-message": hal.To(a.api.Href("failed-messages", it.FailedMessageID))}})
	}
	return out
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := parseFilter(q, true)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p, err := hal.ParsePage(q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ms, total, err := a.store.List(r.Context(), f, p.Size, p.Offset())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]FailedMessage, 0, len(ms))
	for _, m := range ms {
		out = append(out, a.message(m, false))
	}
	href := a.api.Href("failed-messages")
	c := hal.NewCollection(Rel, href, q, out, p, total).Searchable(a.api.Href(), Rel, href, "type", "group", "status", "from", "to", "page", "size")
	c.Links.SetLink("failed-message", hal.Link{Href: href + "/{id}", Templated: true})
	c.Links.Set(GroupsRel, a.api.Href("failed-message-groups"))
	c.Links.Set(RetriesRel, a.api.Href("failed-message-retries"))
	c.Links.Set(ActionsRel, a.api.Href("failed-message-actions"))
	hal.Write(w, r, http.StatusOK, c)
}

// validID reports whether id has the form of our ids (a UUID).
func validID(id string) bool {
	_, err := uuid.Parse(id)
	return err == nil && len(id) == 36
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validID(id) {
		a.fail(w, r, ErrNotFound)
		return
	}
	m, err := a.store.Get(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpkit.SetETag(w, m.Version)
	hal.Write(w, r, http.StatusOK, a.message(m, true))
}

func (a *API) patch(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validID(id) {
		a.fail(w, r, ErrNotFound)
		return
	}
	var req patchRequest
	if err := httpkit.DecodeJSON(w, r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	var m Message
	var err error
	switch {
	case req.Status == "" && len(req.Payload) == 0:
		err = problem.Validation(problem.FieldError{Field: "/status", Message: "give status (archived or unresolved) or payload"})
	case req.Status != "" && len(req.Payload) > 0:
		err = problem.Validation(problem.FieldError{Field: "/payload", Message: "change the status or the payload, not both at once"})
	case len(req.Payload) > 0 && !a.allowEdit:
		err = problem.Validation(problem.FieldError{Field: "/payload", Message: "editing payloads is off on this service (FAILED_MESSAGES_ALLOW_EDIT=1 turns it on)"})
	case len(req.Payload) > 0:
		m, err = a.store.EditPayload(r.Context(), id, req.Payload, httpkit.IfMatch(r).Allows, Identify(r))
	case req.Status != string(Archived) && req.Status != string(Unresolved):
		err = problem.Validation(problem.FieldError{Field: "/status", Message: "must be archived or unresolved"})
	default:
		m, err = a.store.SetStatus(r.Context(), id, Status(req.Status), httpkit.IfMatch(r).Allows, Identify(r))
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpkit.SetETag(w, m.Version)
	hal.Write(w, r, http.StatusOK, a.message(m, true))
}

func (a *API) groups(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := parseFilter(q, false)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p, err := hal.ParsePage(q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	gs, total, err := a.store.Groups(r.Context(), f, p.Size, p.Offset())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]FailedMessageGroup, 0, len(gs))
	for _, g := range gs {
		out = append(out, a.groupModel(g))
	}
	href := a.api.Href("failed-message-groups")
	hal.Write(w, r, http.StatusOK, hal.NewCollection(GroupsRel, href, q, out, p, total).
		Searchable(a.api.Href(), GroupsRel, href, "type", "status", "from", "to", "page", "size"))
}

func (a *API) group(w http.ResponseWriter, r *http.Request) {
	fp := r.PathValue("fingerprint")
	if !ValidFingerprint(fp) {
		a.fail(w, r, ErrNotFound)
		return
	}
	g, err := a.store.Group(r.Context(), fp)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	hal.Write(w, r, http.StatusOK, a.groupModel(g))
}

func (a *API) retry(w http.ResponseWriter, r *http.Request) {
	var req retryRequest
	if err := httpkit.DecodeJSON(w, r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	var errs problem.Fields
	switch {
	case len(req.IDs) == 0 && req.Group == "":
		errs.Add("/ids", `give "ids" (failed message ids) or "group" (a fingerprint)`)
	case len(req.IDs) > 0 && req.Group != "":
		errs.Add("/group", `give "ids" or "group", not both`)
	case len(req.IDs) > MaxRetryIDs:
		errs.Add("/ids", fmt.Sprintf("at most %d ids per operation; retry a group for more", MaxRetryIDs))
	case req.Group != "" && !ValidFingerprint(req.Group):
		errs.Add("/group", "must be a fingerprint: 16 lower-case hexadecimal digits")
	}
	seen := map[string]bool{}
	var ids []string
	for i, id := range req.IDs {
		if !validID(id) {
			errs.Add(fmt.Sprintf("/ids/%d", i), "must be a failed message id (a UUID)")
		} else if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	batch, rate := DefaultBatchSize, DefaultRate
	if req.BatchSize != nil {
		batch = *req.BatchSize
		errs.Check(batch >= 1 && batch <= MaxBatchSize, "/batch_size", fmt.Sprintf("must be an integer from 1 to %d", MaxBatchSize))
	}
	if req.RatePerSecond != nil {
		rate = *req.RatePerSecond
		errs.Check(rate >= 0.1 && rate <= MaxRate, "/rate_per_second", fmt.Sprintf("must be from 0.1 to %g", MaxRate))
	}
	if err := errs.Err(); err != nil {
		a.fail(w, r, err)
		return
	}
	op, err := a.store.CreateRetry(r.Context(), Selection{IDs: ids, Group: req.Group}, batch, rate, Identify(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.keeper.Wake()
	res := a.retryModel(op)
	w.Header().Set("Location", res.Links.Href("self"))
	hal.Write(w, r, http.StatusAccepted, res)
}

func (a *API) retries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := hal.ParsePage(q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rs, total, err := a.store.Retries(r.Context(), p.Size, p.Offset())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]FailedMessageRetry, 0, len(rs))
	for _, op := range rs {
		out = append(out, a.retryModel(op))
	}
	c := hal.NewCollection(RetriesRel, a.api.Href("failed-message-retries"), q, out, p, total)
	c.Links.Set("up", a.api.Href())
	hal.Write(w, r, http.StatusOK, c)
}

func (a *API) getRetry(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validID(id) {
		a.fail(w, r, ErrNotFound)
		return
	}
	op, err := a.store.GetRetry(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	hal.Write(w, r, http.StatusOK, a.retryModel(op))
}

func (a *API) actions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := hal.ParsePage(q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	as, total, err := a.store.Actions(r.Context(), p.Size, p.Offset())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]FailedMessageAction, 0, len(as))
	for _, ac := range as {
		out = append(out, a.actionModel(ac))
	}
	c := hal.NewCollection(ActionsRel, a.api.Href("failed-message-actions"), q, out, p, total)
	c.Links.Set("up", a.api.Href())
	hal.Write(w, r, http.StatusOK, c)
}

func (a *API) actionModel(ac Action) FailedMessageAction {
	m := FailedMessageAction{ID: ac.ID, At: ac.At, Actor: ac.Actor, RequestID: ac.RequestID, Action: ac.Action,
		Target: ac.Target, Count: ac.Count, RetryID: ac.RetryID, Detail: ac.Detail,
		Links: hal.Links{"self": hal.To(a.api.Href("failed-message-actions", strconv.FormatInt(ac.ID, 10)))}}
	if ac.RetryID != "" {
		m.Links["retry"] = hal.To(a.api.Href("failed-message-retries", ac.RetryID))
	}
	return m
}

func (a *API) action(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		a.fail(w, r, ErrNotFound)
		return
	}
	ac, err := a.store.Action(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	hal.Write(w, r, http.StatusOK, a.actionModel(ac))
}
