-- +goose Up
-- Ids are matched exactly, as in every other service: under utf8mb4_unicode_ci an id in upper case
-- found the customer whose id is in lower case.
ALTER TABLE customers MODIFY id CHAR(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;

-- +goose Down
ALTER TABLE customers MODIFY id CHAR(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL;
