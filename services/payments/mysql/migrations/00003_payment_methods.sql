-- +goose Up
-- Payment methods customers register: the provider's token is kept here, and only here.
CREATE TABLE payment_methods (
    id          CHAR(36)     NOT NULL,
    customer_id VARCHAR(100) NOT NULL,
    token       VARCHAR(255) NOT NULL,
    created_at  DATETIME(3)  NOT NULL,
    PRIMARY KEY (id),
    KEY payment_methods_customer (customer_id, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE payment_methods;
