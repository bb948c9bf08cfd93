// Package failedmsg keeps a service's failed messages (its dead letters)
// where an operator can search, group, retry and archive them, and serves
// them as HAL resources of the service's own API. The service kit
// (internal/service) wires it into every service that has a queue; a
// service's own code never calls it.
//
// Three parts share one set of tables in the service's database (Migrate):
//
//   - the keeper (Keeper.Run, an actor of the kit's run group) reads
//     <service>.dead-letter and inserts one row per failed message, acking a
//     dead letter only after its row is committed. A message is identified
//     by its message id and its dead-lettering (eventbus.HeaderRetries and
//     x-dead-lettered-at, recorded in failed_message_receipts), so a dead
//     letter delivered twice is kept once. A message that fails again after
//     a retry comes back to the same row: status unresolved, attempts and
//     dead-letterings counted, the new reason.
//   - retry operations (POST /v1/failed-message-retries) run in the
//     background, in batches at a bounded rate, with their progress in the
//     database: an operation interrupted by a stop resumes at the next start
//     (of any instance, once its lease expires), and every message's outcome
//     is recorded before and after it is republished.
//   - the API (Routes): failed messages, groups, retry operations and the
//     audit log of every action.
//
// A retried message is republished unchanged (same message_id, same body:
// the inbox makes a second success harmless) to the service's own queue
// only, through its retry exchange (eventbus.Bus.Redeliver), as a first
// attempt. When the handler succeeds, its inbox row appears and the keeper
// marks the message resolved; when it fails for good, it is dead-lettered
// again and comes back unresolved: no loop, an operator decides again.
//
// Statuses of a failed message:
//
//	unresolved  dead-lettered, waiting for an operator (retry or archive)
//	retrying    republished by a retry operation, not handled yet
//	resolved    handled after a retry (its uuid is in the service's inbox)
//	archived    put aside by an operator (can be unarchived: back to unresolved)
//
// A malformed message (no valid uuid, not JSON, properties that break the
// event rules) is kept and shown with what made it malformed; it can be
// archived, never retried.
package failedmsg

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
	"time"
)

// Link relations and paths of the resources, under the service's /v1.
const (
	// Rel is the relation, on a service's API root, of its failed messages.
	Rel        = "failed-messages"
	GroupsRel  = "failed-message-groups"
	RetriesRel = "failed-message-retries"
	ActionsRel = "failed-message-actions"
)

// Status is the state of a failed message.
type Status string

// The statuses of a failed message (see the package documentation).
const (
	Unresolved Status = "unresolved"
	Retrying   Status = "retrying"
	Resolved   Status = "resolved"
	Archived   Status = "archived"
)

// ValidStatus reports whether s is one of the four statuses.
func ValidStatus(s string) bool {
	switch Status(s) {
	case Unresolved, Retrying, Resolved, Archived:
		return true
	}
	return false
}

// OpStatus is the state of a retry operation.
type OpStatus string

// The statuses of a retry operation: running (its messages are being
// republished), completed (every message has its outcome), interrupted (the
// process stopped while it ran: it resumes at the next start, then shows
// running again with restarts counted).
const (
	OpRunning     OpStatus = "running"
	OpCompleted   OpStatus = "completed"
	OpInterrupted OpStatus = "interrupted"
)

// Outcomes of one message of a retry operation.
const (
	OutcomePending     = "pending"     // not reached yet
	OutcomePublishing  = "publishing"  // marked retrying; its republish is not confirmed yet
	OutcomeRepublished = "republished" // sent back to the service's queue, confirmed by the broker
	OutcomeSkipped     = "skipped"     // not republished: its state changed (archived, resolved, malformed …); see detail
	OutcomeFailed      = "failed"      // the broker did not confirm it; the message is unresolved again
)

// Message is one failed message as kept in the service's database.
type Message struct {
	ID            string // our id (a UUID): the resource id
	Key           string // the event's uuid, or for a malformed message a digest of the dead letter
	MessageID     string // the message_id property
	Type          string
	AppID         string
	ContentType   string
	CorrelationID string
	TraceID       string // from traceparent; "" when absent
	Timestamp     *time.Time
	Headers       map[string]any
	Body          []byte
	OriginalBody  []byte // the payload as dead-lettered, when an operator edited it (nil otherwise)
	Reason        string
	Fingerprint   string
	Malformed     string // why it breaks the event rules; "" when well formed
	Status        Status
	Attempts      int // handler attempts over every dead-lettering
	DeadLetters   int // how many times it was dead-lettered
	Retries       int // how many times an operator retry republished it
	FirstFailedAt time.Time
	LastFailedAt  time.Time
	RetriedAt     *time.Time
	ResolvedAt    *time.Time
	Version       int64
}

// Group is a set of failed messages with the same fingerprint: the same
// event type failing for the same (normalised) reason.
type Group struct {
	Fingerprint   string
	Type          string
	Reason        string // the reason of its latest message
	Count         int
	Unresolved    int
	FirstFailedAt time.Time
	LastFailedAt  time.Time
}

// Filter selects failed messages; zero fields select everything.
type Filter struct {
	Type        string
	Fingerprint string
	Status      Status
	From, To    time.Time // last failure in [From, To]
}

// Action is one entry of the audit log.
type Action struct {
	ID        int64
	At        time.Time
	Actor     string // the caller (see Identity)
	RequestID string
	Action    string // retry, archive, unarchive, edit
	Target    string // what was selected: "ids" or "group:<fingerprint>" or a message id
	Count     int    // how many messages it concerned
	RetryID   string // the retry operation, for a retry
	Detail    string
}

// Retry is a retry operation and its progress.
type Retry struct {
	ID            string
	Group         string // the fingerprint, for a group retry
	IDs           int    // how many ids were selected, for a selection
	BatchSize     int
	RatePerSecond float64
	Status        OpStatus
	Total         int
	Done          int
	Succeeded     int
	Failed        int // not republished: skipped or not confirmed
	Restarts      int
	Actor         string
	RequestID     string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	FinishedAt    *time.Time
	Items         []RetryItem
}

// RetryItem is the outcome of one message of a retry operation.
type RetryItem struct {
	Seq             int
	FailedMessageID string
	MessageID       string
	Outcome         string
	Detail          string
}

var (
	uuidRE   = regexp.MustCompile(`(?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	hexRE    = regexp.MustCompile(`(?i)\b(0x)?[0-9a-f]{8,}\b`)
	numberRE = regexp.MustCompile(`\d+(\.\d+)?`)
	quoteRE  = regexp.MustCompile(`"[^"]{0,200}"`)
	spaceRE  = regexp.MustCompile(`\s+`)
)

// NormaliseReason returns reason with what varies from one message to the
// next replaced: UUIDs by <uuid>, hexadecimal words by <hex>, numbers by
// <n>, quoted values by "…", white space collapsed, and only its first line
// and at most 500 bytes kept (a panic's stack trace varies with the build).
func NormaliseReason(reason string) string {
	if i := strings.IndexByte(reason, '\n'); i >= 0 {
		reason = reason[:i]
	}
	s := uuidRE.ReplaceAllString(reason, "<uuid>")
	s = quoteRE.ReplaceAllString(s, `"…"`)
	s = hexRE.ReplaceAllStringFunc(s, func(w string) string {
		if strings.ContainsAny(w, "0123456789") {
			return "<hex>"
		}
		return w
	})
	s = numberRE.ReplaceAllString(s, "<n>")
	s = strings.TrimSpace(spaceRE.ReplaceAllString(s, " "))
	if len(s) > 500 {
		s = s[:500]
	}
	return s
}

// Fingerprint returns the group of a failure: 16 hexadecimal digits of the
// SHA-256 of the event type and the normalised reason (NormaliseReason). A
// malformed message's fingerprint uses the rule it breaks, normalised.
func Fingerprint(typ, reason string) string {
	sum := sha256.Sum256([]byte(typ + "\n" + NormaliseReason(reason)))
	return hex.EncodeToString(sum[:8])
}

// ValidFingerprint reports whether s has the form of a fingerprint.
func ValidFingerprint(s string) bool {
	if len(s) != 16 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// traceID returns the trace id of a W3C traceparent, "" if it has none.
func traceID(tp string) string {
	parts := strings.Split(tp, "-")
	if len(parts) != 4 || len(parts[1]) != 32 {
		return ""
	}
	if _, err := hex.DecodeString(parts[1]); err != nil {
		return ""
	}
	return strings.ToLower(parts[1])
}
