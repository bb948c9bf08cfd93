-- +goose Up
CREATE TABLE stock_items (
    product_id   VARCHAR(100) NOT NULL,
    product_name VARCHAR(255) NOT NULL DEFAULT '',
    status       VARCHAR(16)  NOT NULL,
    available    BIGINT       NOT NULL DEFAULT 0,
    reserved     BIGINT       NOT NULL DEFAULT 0,
    version      BIGINT       NOT NULL DEFAULT 1,
    created_at   DATETIME(3)  NOT NULL,
    updated_at   DATETIME(3)  NOT NULL,
    PRIMARY KEY (product_id),
    KEY stock_items_status (status, product_id),
    CONSTRAINT stock_items_available_not_negative CHECK (available >= 0),
    CONSTRAINT stock_items_reserved_not_negative CHECK (reserved >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE replenishments (
    id         CHAR(36)     NOT NULL,
    product_id VARCHAR(100) NOT NULL,
    quantity   BIGINT       NOT NULL,
    created_at DATETIME(3)  NOT NULL,
    PRIMARY KEY (id),
    KEY replenishments_product (product_id, created_at, id),
    KEY replenishments_created (created_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE reservations (
    order_id    VARCHAR(100) NOT NULL,
    status      VARCHAR(16)  NOT NULL,
    reason      VARCHAR(32)  NOT NULL DEFAULT '',
    created_at  DATETIME(3)  NOT NULL,
    released_at DATETIME(3)  NULL,
    PRIMARY KEY (order_id),
    KEY reservations_created (created_at, order_id),
    KEY reservations_status (status, created_at, order_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per product of a reservation; available is set on the lines a rejected (out_of_stock)
-- reservation could not cover: the stock that was available then.
CREATE TABLE reservation_lines (
    order_id   VARCHAR(100) NOT NULL,
    product_id VARCHAR(100) NOT NULL,
    quantity   BIGINT       NOT NULL,
    available  BIGINT       NULL,
    PRIMARY KEY (order_id, product_id),
    KEY reservation_lines_product (product_id, order_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Orders whose order_cancelled arrived before their order_placed.
CREATE TABLE early_cancellations (
    order_id     VARCHAR(100) NOT NULL,
    cancelled_at DATETIME(3)  NOT NULL,
    PRIMARY KEY (order_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE early_cancellations;
DROP TABLE reservation_lines;
DROP TABLE reservations;
DROP TABLE replenishments;
DROP TABLE stock_items;
