-- +goose Up
-- The customer of each order (from order_placed and order_confirmed): a customer sees only the
-- shipments of their own orders.
ALTER TABLE orders ADD COLUMN customer_id VARCHAR(100) NOT NULL DEFAULT '' AFTER order_id,
    ADD KEY orders_customer (customer_id);

-- +goose Down
ALTER TABLE orders DROP KEY orders_customer, DROP COLUMN customer_id;
