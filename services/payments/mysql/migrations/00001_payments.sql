-- +goose Up
-- What payments knows of each order: fed by order_placed, stock_reserved and order_cancelled, which
-- may arrive in any order.
CREATE TABLE orders (
    order_id          VARCHAR(100) NOT NULL,
    total_amount      BIGINT       NOT NULL DEFAULT 0,
    currency          VARCHAR(16)  NOT NULL DEFAULT '',
    payment_token     VARCHAR(255) NOT NULL DEFAULT '',
    placed_at         DATETIME(3)  NULL,
    stock_reserved_at DATETIME(3)  NULL,
    cancelled_at      DATETIME(3)  NULL,
    updated_at        DATETIME(3)  NOT NULL,
    PRIMARY KEY (order_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE payments (
    id                 CHAR(36)     NOT NULL,
    order_id           VARCHAR(100) NOT NULL,
    amount             BIGINT       NOT NULL,
    currency           VARCHAR(16)  NOT NULL,
    status             VARCHAR(16)  NOT NULL,
    reason             VARCHAR(64)  NOT NULL DEFAULT '',
    provider_reference VARCHAR(100) NOT NULL DEFAULT '',
    refund_reference   VARCHAR(100) NOT NULL DEFAULT '',
    version            BIGINT       NOT NULL DEFAULT 1,
    created_at         DATETIME(3)  NOT NULL,
    captured_at        DATETIME(3)  NULL,
    declined_at        DATETIME(3)  NULL,
    refunded_at        DATETIME(3)  NULL,
    PRIMARY KEY (id),
    UNIQUE KEY payments_order (order_id),
    KEY payments_created (created_at, id),
    KEY payments_status (status, created_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE payments;
DROP TABLE orders;
