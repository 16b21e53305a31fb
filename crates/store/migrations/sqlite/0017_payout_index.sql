-- A payout batch stamps its commissions in table order. Keyed by the batch
-- alone, the payout index then grows at its end as they are stamped (the
-- entries of one batch sort by rowid), where keyed by batch and partner
-- each stamp was an insert at a random place — a large batch had to drop
-- and rebuild it. A batch's items are written from the balances read in
-- the same snapshot; a partner's commissions in a batch are found through
-- the partner index.
DROP INDEX commissions_payout_idx;
CREATE INDEX commissions_payout_idx ON commissions (payout_id) WHERE payout_id IS NOT NULL;
