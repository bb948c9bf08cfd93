-- +goose Up
-- One row per order seen, locked first by every handler of that order's events: the handlers of
-- one order run one after the other, and no handler needs a locking read of a row that may not
-- exist (its gap lock deadlocks concurrent inserts of other orders).
CREATE TABLE orders (
    order_id     VARCHAR(100) NOT NULL,
    placed_at    DATETIME(3)  NULL,
    cancelled_at DATETIME(3)  NULL,
    PRIMARY KEY (order_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT INTO orders (order_id, placed_at) SELECT order_id, created_at FROM reservations;
INSERT INTO orders (order_id, cancelled_at) SELECT order_id, cancelled_at FROM early_cancellations
    ON DUPLICATE KEY UPDATE cancelled_at = VALUES(cancelled_at);
DROP TABLE early_cancellations;

-- +goose Down
CREATE TABLE early_cancellations (
    order_id     VARCHAR(100) NOT NULL,
    cancelled_at DATETIME(3)  NOT NULL,
    PRIMARY KEY (order_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO early_cancellations (order_id, cancelled_at)
    SELECT order_id, cancelled_at FROM orders WHERE cancelled_at IS NOT NULL AND placed_at IS NULL;
DROP TABLE orders;
