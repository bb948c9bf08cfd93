-- +goose Up
-- Stock counted down when an order's goods leave (shipment_dispatched): held -> shipped.
-- replenished is the sum of a product's replenishments, so that available + reserved + shipped =
-- replenished can be checked from one stock item.
ALTER TABLE stock_items
    ADD COLUMN shipped     BIGINT NOT NULL DEFAULT 0 AFTER reserved,
    ADD COLUMN replenished BIGINT NOT NULL DEFAULT 0 AFTER shipped,
    ADD CONSTRAINT stock_items_shipped_not_negative CHECK (shipped >= 0);
UPDATE stock_items s SET replenished = (SELECT IFNULL(SUM(r.quantity), 0) FROM replenishments r WHERE r.product_id = s.product_id);
ALTER TABLE reservations ADD COLUMN shipped_at DATETIME(3) NULL AFTER released_at;
ALTER TABLE orders ADD COLUMN shipped_at DATETIME(3) NULL;

-- +goose Down
ALTER TABLE orders DROP COLUMN shipped_at;
ALTER TABLE reservations DROP COLUMN shipped_at;
ALTER TABLE stock_items DROP CONSTRAINT stock_items_shipped_not_negative, DROP COLUMN replenished, DROP COLUMN shipped;
