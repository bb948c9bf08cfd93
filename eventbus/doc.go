// Package eventbus is the RabbitMQ adapter every Sagittarius service uses to
// take part in the choreography. It enforces the architecture guideline in
// code:
//
//   - Names. A service is domain-name.subdomain-name (ValidateServiceName);
//     an event is lower_snake_case in the past tense (ValidateEventName). Both
//     are checked when a Bus or an EventType is created.
//   - Publishing. Every event goes to the durable fanout exchange
//     sagittarius-a with message_id = uuid, type = service.event_name,
//     app_id = service, persistent delivery, content_type application/json and
//     a timestamp; the payload is {"uuid", "fired_at", "<entity>"} with fired_at
//     as YYYY-MM-DDTHH:mm:ss.sssZ (EventType.New). Correlation id, causation id
//     and traceparent travel as headers. Bus.Publish returns only once the
//     broker confirmed every message, with many in flight.
//   - Transactional outbox. Services never publish directly: Enqueue writes
//     events into the eventbus_outbox table in the transaction of the change
//     that caused them, and the code that committed publishes them right
//     after the commit (the fast path: Track, TxEvents.Committed, used by
//     HandleTx and mysqldb.InTx); a Relay marks what the broker confirmed and
//     sweeps what the fast path did not confirm. No event for a rolled-back
//     change, no committed change without its event.
//   - Consuming. The service's durable queue, named after the service, is
//     bound to sagittarius-a. Handlers are registered per event type (Handle,
//     HandleTx) and get typed values; events of other types are acked unread,
//     in batches that never cover a delivery a handler still holds.
//     HandleTx records each event's uuid in eventbus_inbox in the handler's
//     transaction, so a redelivered event is handled once.
//   - Failure. A failing handler is retried through the service's own delay
//     queues (via its own exchange S.retry, never sagittarius-a), then
//     dead-lettered to S.dead-letter with the reason; malformed messages are
//     dead-lettered at once. Nothing is acked that was not handled or moved.
//   - Connection loss. Run reconnects with backoff, declares the topology
//     again and resumes consuming; Publish waits for the connection up to its
//     context; the Relay keeps rows until they are confirmed.
//   - Observability. Config.Observer, if set, counts published events and
//     every delivery's outcome through values resolved per type at Run
//     (Observer); Config.TracerProvider, if set, records OpenTelemetry spans:
//     the outbox write (its trace context is stored with the row), the
//     publish and the processing in each consumer (trace.go). Neither ties
//     the bus to a metrics or tracing backend; nil costs nothing.
//
// A service's wiring, in order:
//
//	bus, err := eventbus.New(eventbus.Config{URL: amqpURL, Service: "sales.orders"})
//	err = bus.Publishes(orderevents.All()...)
//	err = eventbus.HandleTx(bus, db, stockevents.StockReserved, store.OnStockReserved)
//	relay, err := eventbus.NewRelay(db, bus, eventbus.RelayConfig{})
//	go bus.Run(ctx); go relay.Run(ctx)
//
// and in a store method, inside the transaction of the change (run by
// mysqldb.InTx, which publishes the events right after its commit):
//
//	msg, err := orderevents.OrderPlaced.New(ctx, resource)
//	err = eventbus.Enqueue(ctx, tx, msg)
//
// A transaction committed by other code is published by the relay: call
// relay.Notify() after its commit, or track it (Track, then Committed).
package eventbus
