-- +goose Up
CREATE TABLE products (
    id             CHAR(36)      NOT NULL,
    sku            VARCHAR(64)   CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    name           VARCHAR(200)  NOT NULL,
    description    TEXT          NOT NULL,
    price_amount   BIGINT        NOT NULL,
    price_currency CHAR(3)       CHARACTER SET ascii NOT NULL,
    status         VARCHAR(16)   NOT NULL,
    version        BIGINT        NOT NULL,
    added_at       DATETIME(6)   NOT NULL,
    updated_at     DATETIME(6)   NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY products_sku (sku),
    KEY products_added (added_at, id),
    KEY products_status (status, added_at, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- +goose Down
DROP TABLE products;
