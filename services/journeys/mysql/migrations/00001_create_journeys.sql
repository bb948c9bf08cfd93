-- +goose Up
-- One row per journey (correlation id): its derived status, kept current by
-- every event of the journey or of its subject, and by the deadline checker.
CREATE TABLE journeys (
    id          VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    kind        VARCHAR(64)  NOT NULL DEFAULT '',
    state       VARCHAR(32)  NOT NULL,
    stuck_step  VARCHAR(64)  NOT NULL DEFAULT '',
    waiting     LONGTEXT     NOT NULL,
    since       DATETIME(3)  NULL,
    deadline    DATETIME(3)  NULL,
    started_at  DATETIME(3)  NOT NULL,
    updated_at  DATETIME(3)  NOT NULL,
    event_count INT          NOT NULL DEFAULT 0,
    trace_id    VARCHAR(32)  NOT NULL DEFAULT '',
    links       LONGTEXT     NOT NULL,
    publishers  VARCHAR(1000) NOT NULL DEFAULT '',
    version     BIGINT       NOT NULL DEFAULT 0,
    PRIMARY KEY (id),
    KEY journeys_started (started_at, id),
    KEY journeys_state (state, started_at, id),
    KEY journeys_deadline (deadline)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Every event once (by uuid), with the journey it belongs to.
CREATE TABLE journey_events (
    uuid         CHAR(36)     NOT NULL,
    journey_id   VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    type         VARCHAR(200) NOT NULL,
    publisher    VARCHAR(100) NOT NULL,
    fired_at     DATETIME(3)  NOT NULL,
    causation_id VARCHAR(64)  NOT NULL DEFAULT '',
    actor        VARCHAR(200) NOT NULL DEFAULT '',
    trace_id     VARCHAR(32)  NOT NULL DEFAULT '',
    entity_key   VARCHAR(64)  NOT NULL DEFAULT '',
    received_at  DATETIME(3)  NOT NULL,
    PRIMARY KEY (uuid),
    KEY journey_events_journey (journey_id, fired_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- The business ids found in a journey's events (order_id, customer_id …).
CREATE TABLE journey_ids (
    kind       VARCHAR(32)  NOT NULL,
    value      VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    journey_id VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    PRIMARY KEY (kind, value, journey_id),
    KEY journey_ids_journey (journey_id, kind)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- +goose Down
DROP TABLE journey_ids;
DROP TABLE journey_events;
DROP TABLE journeys;
