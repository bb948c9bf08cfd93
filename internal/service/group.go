package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
)

// Group runs actors concurrently, in the style of oklog/run: each actor is an
// execute function and an interrupt function; when the first actor's execute
// returns, every actor is interrupted, and Run waits for all of them. A
// process is one group: the HTTP server, the bus, the relay, a service's own
// background work, and the signal (its context).
//
// The zero Group is ready to use. Add is not safe for concurrent use and must
// not be called once Run has started.
type Group struct {
	actors []actor
}

type actor struct {
	name      string
	execute   func() error
	interrupt func(error)
}

// Add adds an actor. execute runs until it finishes its work or is
// interrupted; interrupt must make execute return promptly (it is called
// once, with the error of the first actor to return, possibly nil, and may be
// called before execute has started or after it has returned).
func (g *Group) Add(name string, execute func() error, interrupt func(error)) {
	g.actors = append(g.actors, actor{name: name, execute: execute, interrupt: interrupt})
}

// Go adds an actor that runs fn(ctx) with a context of its own, cancelled to
// interrupt it: fn must return when ctx is done, nil after an interruption.
func (g *Group) Go(name string, fn func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	g.Add(name, func() error { return fn(ctx) }, func(error) { cancel() })
}

// Run runs every actor and blocks until all have returned. The first to
// return interrupts the others. Run returns the errors the actors returned,
// each prefixed with its actor's name and joined in the order they returned;
// context.Canceled and http.ErrServerClosed count as a clean stop (nil).
// An empty group returns nil at once. first, if not nil, is called with the
// name and error of the first actor to return, before the others are
// interrupted (for a log line saying why the process stops).
func (g *Group) Run(first func(name string, err error)) error {
	if len(g.actors) == 0 {
		return nil
	}
	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(g.actors))
	var wg sync.WaitGroup
	for _, a := range g.actors {
		wg.Go(func() { results <- result{a.name, a.execute()} })
	}
	var errs []error
	collect := func(r result) {
		if r.err != nil && !errors.Is(r.err, context.Canceled) && !errors.Is(r.err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("%s: %w", r.name, r.err))
		}
	}
	r := <-results
	if first != nil {
		first(r.name, r.err)
	}
	collect(r)
	for _, a := range g.actors {
		a.interrupt(r.err)
	}
	for range len(g.actors) - 1 {
		collect(<-results)
	}
	wg.Wait()
	return errors.Join(errs...)
}
