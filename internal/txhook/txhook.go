// Package txhook connects the code that commits a database transaction
// (mysqldb.InTx) with the event bus's fast path (eventbus.Track), which
// publishes a transaction's events right after its commit, without an import
// between the two packages (eventbus's tests use mysqldb through testinfra).
// The eventbus package installs its tracker when it is initialized; a
// program that does not link eventbus tracks nothing.
package txhook

import (
	"sync/atomic"

	"github.com/jmoiron/sqlx"
)

// Tracked is a transaction's hook: call Committed once its commit succeeded,
// and Discard (deferred) in every case.
type Tracked interface {
	Committed() bool
	Discard()
}

// Tracker returns the hook of tx, a transaction on db just begun, or nil.
type Tracker func(db *sqlx.DB, tx *sqlx.Tx) Tracked

var tracker atomic.Pointer[Tracker]

// Set installs t. eventbus calls it at initialization.
func Set(t Tracker) { tracker.Store(&t) }

// Track returns the hook of tx, never nil: one that does nothing when no
// tracker is installed or the tracker has nothing to do for tx.
func Track(db *sqlx.DB, tx *sqlx.Tx) Tracked {
	if t := tracker.Load(); t != nil {
		if h := (*t)(db, tx); h != nil {
			return h
		}
	}
	return none{}
}

type none struct{}

func (none) Committed() bool { return false }
func (none) Discard()        {}
