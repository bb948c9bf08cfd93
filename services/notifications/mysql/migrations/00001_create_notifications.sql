-- +goose Up
-- The notifications of crm.notifications: one per order and kind (the event it comes from), never
-- two. Ids are matched exactly (utf8mb4_bin). The bus tables (outbox, inbox) are the service kit's.
CREATE TABLE notifications (
    id              CHAR(36)     CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    kind            VARCHAR(32)  NOT NULL,
    order_id        VARCHAR(64)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    customer_id     VARCHAR(64)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    channel         VARCHAR(16)  NOT NULL,
    recipient       VARCHAR(254) NULL,
    subject         VARCHAR(200) NOT NULL,
    text            TEXT         NOT NULL,
    status          VARCHAR(16)  NOT NULL,
    reason          VARCHAR(500) NOT NULL DEFAULT '',
    attempts        INT          NOT NULL DEFAULT 0,
    next_attempt_at DATETIME(6)  NULL,
    claimed_at      DATETIME(6)  NULL,
    event_id        VARCHAR(64)  NOT NULL,
    version         BIGINT       NOT NULL,
    created_at      DATETIME(6)  NOT NULL,
    sent_at         DATETIME(6)  NULL,
    PRIMARY KEY (id),
    UNIQUE KEY notifications_order_kind (order_id, kind),
    KEY notifications_customer (customer_id, created_at, id),
    KEY notifications_status (status, created_at, id),
    KEY notifications_created (created_at, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- The read model of crm.customers' customers: the newest version seen of each.
CREATE TABLE customers (
    id      VARCHAR(64)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    email   VARCHAR(254) NOT NULL,
    name    VARCHAR(200) NOT NULL,
    removed BOOLEAN      NOT NULL DEFAULT FALSE,
    version BIGINT       NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Whose each order is, from sales.orders' events (a refund names only its order).
CREATE TABLE orders (
    id          VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    customer_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- +goose Down
DROP TABLE orders;
DROP TABLE customers;
DROP TABLE notifications;
