-- +goose Up
-- Ids are matched exactly, as in every other service: under utf8mb4_unicode_ci an id in upper case
-- found the product whose id is in lower case.
ALTER TABLE products MODIFY id CHAR(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;

-- +goose Down
ALTER TABLE products MODIFY id CHAR(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL;
