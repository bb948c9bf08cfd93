-- +goose Up
-- What shipping knows of each order: its address (from order_placed or order_confirmed) and whether
-- it was confirmed or cancelled; the events may arrive in any order.
CREATE TABLE orders (
    order_id     VARCHAR(100) NOT NULL,
    name         VARCHAR(255) NOT NULL DEFAULT '',
    line1        VARCHAR(255) NOT NULL DEFAULT '',
    line2        VARCHAR(255) NOT NULL DEFAULT '',
    postal_code  VARCHAR(32)  NOT NULL DEFAULT '',
    city         VARCHAR(255) NOT NULL DEFAULT '',
    country      VARCHAR(8)   NOT NULL DEFAULT '',
    confirmed_at DATETIME(3)  NULL,
    cancelled_at DATETIME(3)  NULL,
    updated_at   DATETIME(3)  NOT NULL,
    PRIMARY KEY (order_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE shipments (
    id            CHAR(36)     NOT NULL,
    order_id      VARCHAR(100) NOT NULL,
    status        VARCHAR(16)  NOT NULL,
    name          VARCHAR(255) NOT NULL DEFAULT '',
    line1         VARCHAR(255) NOT NULL DEFAULT '',
    line2         VARCHAR(255) NOT NULL DEFAULT '',
    postal_code   VARCHAR(32)  NOT NULL DEFAULT '',
    city          VARCHAR(255) NOT NULL DEFAULT '',
    country       VARCHAR(8)   NOT NULL DEFAULT '',
    version       BIGINT       NOT NULL DEFAULT 1,
    scheduled_at  DATETIME(3)  NOT NULL,
    dispatched_at DATETIME(3)  NULL,
    delivered_at  DATETIME(3)  NULL,
    cancelled_at  DATETIME(3)  NULL,
    PRIMARY KEY (id),
    UNIQUE KEY shipments_order (order_id),
    KEY shipments_scheduled (scheduled_at, id),
    KEY shipments_status (status, scheduled_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE shipments;
DROP TABLE orders;
