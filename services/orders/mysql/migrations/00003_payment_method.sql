-- +goose Up
-- Orders refer to a payment method registered with finance.payments; the raw payment token never
-- leaves payments, so it is dropped here, and from the stored answers of Idempotency-Keys.
ALTER TABLE orders DROP COLUMN payment_token,
    ADD COLUMN payment_method_id VARCHAR(200) NOT NULL DEFAULT '' AFTER currency;
DELETE FROM idempotency_keys;

-- +goose Down
ALTER TABLE orders DROP COLUMN payment_method_id,
    ADD COLUMN payment_token VARCHAR(200) NOT NULL DEFAULT '' AFTER currency;
