-- +goose Up
-- The notifications of crm.notifications. Ids are matched exactly (utf8mb4_bin). The bus tables (outbox,
-- inbox) are the service kit's: they are not migrations of the service.
CREATE TABLE notifications (
    id           CHAR(36)     CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    name         VARCHAR(200) NOT NULL,
    version      BIGINT       NOT NULL,
    created_at   DATETIME(6)  NOT NULL,
    PRIMARY KEY (id),
    KEY notifications_created (created_at, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- The read model of crm.customers' customers (eventapi): the newest version seen of each.
CREATE TABLE customers (
    id      VARCHAR(64)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    name    VARCHAR(200) NOT NULL,
    version BIGINT       NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- +goose Down
DROP TABLE customers;
DROP TABLE notifications;
