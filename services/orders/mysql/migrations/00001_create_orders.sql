-- Orders, their lines, the Idempotency-Key records of order placement, and the
-- read models of customers and products that placement validates against.

-- +goose Up
CREATE TABLE orders (
    id                  CHAR(36)     NOT NULL,
    customer_id         VARCHAR(191) NOT NULL,
    status              VARCHAR(16)  NOT NULL,
    cancellation_reason VARCHAR(32)  NOT NULL DEFAULT '',
    total_amount        BIGINT       NOT NULL,
    currency            CHAR(3)      NOT NULL,
    payment_token       VARCHAR(200) NOT NULL,
    ship_name           VARCHAR(200) NOT NULL,
    ship_line1          VARCHAR(200) NOT NULL,
    ship_line2          VARCHAR(200) NOT NULL DEFAULT '',
    ship_postal_code    VARCHAR(200) NOT NULL,
    ship_city           VARCHAR(200) NOT NULL,
    ship_country        CHAR(2)      NOT NULL,
    payment_id          VARCHAR(191) NOT NULL DEFAULT '',
    shipment_id         VARCHAR(191) NOT NULL DEFAULT '',
    version             BIGINT       NOT NULL,
    placed_at           DATETIME(6)  NOT NULL,
    updated_at          DATETIME(6)  NOT NULL,
    PRIMARY KEY (id),
    KEY orders_by_customer (customer_id, placed_at),
    KEY orders_by_status (status, placed_at),
    KEY orders_by_placed_at (placed_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE order_lines (
    order_id     CHAR(36)     NOT NULL,
    line_no      INT          NOT NULL,
    product_id   VARCHAR(191) NOT NULL,
    product_name TEXT         NOT NULL,
    quantity     INT          NOT NULL,
    unit_amount  BIGINT       NOT NULL,
    currency     CHAR(3)      NOT NULL,
    PRIMARY KEY (order_id, line_no),
    CONSTRAINT order_lines_order FOREIGN KEY (order_id) REFERENCES orders (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- One row per Idempotency-Key of POST /v1/orders: the hash of the request it
-- was first used with and the response body (the order as placed).
CREATE TABLE idempotency_keys (
    idem_key     VARCHAR(191) NOT NULL,
    request_hash CHAR(64)     NOT NULL,
    order_id     CHAR(36)     NOT NULL,
    response     LONGTEXT     NOT NULL,
    created_at   DATETIME(6)  NOT NULL,
    PRIMARY KEY (idem_key),
    KEY idempotency_keys_by_age (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Read model of crm.customers (customer_registered/updated/removed).
CREATE TABLE customers (
    id         VARCHAR(191) NOT NULL,
    active     BOOLEAN      NOT NULL,
    removed    BOOLEAN      NOT NULL DEFAULT FALSE,
    version    BIGINT       NOT NULL,
    fired_at   DATETIME(3)  NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Read model of catalog.products (product_added/updated/retired).
CREATE TABLE products (
    id           VARCHAR(191) NOT NULL,
    name         TEXT         NOT NULL,
    active       BOOLEAN      NOT NULL,
    retired      BOOLEAN      NOT NULL DEFAULT FALSE,
    price_amount BIGINT       NULL,
    currency     CHAR(3)      NULL,
    version      BIGINT       NOT NULL,
    fired_at     DATETIME(3)  NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- +goose Down
DROP TABLE products;
DROP TABLE customers;
DROP TABLE idempotency_keys;
DROP TABLE order_lines;
DROP TABLE orders;
