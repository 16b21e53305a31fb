-- The ledger writes per set, not per commission, where a set is what
-- happened: a commission's row is its own accrual record (who booked it and
-- why), the end of its hold is read from `available_at` (payable on read;
-- the release job only announces, per partner and currency, what became
-- payable since its last run), and a payout batch stamps its commissions
-- with its id while the batch itself records when and by whom. Entries are
-- still written for what changes a commission in place (reversed, paid,
-- unbatched). `status` is no longer stored as 'payable': an open commission
-- is 'pending' until it is paid or reversed.

ALTER TABLE commissions ADD COLUMN booked_by TEXT;
ALTER TABLE commissions ADD COLUMN booked_reason TEXT;

-- Per workspace: the release job announced everything due up to
-- `released_through`. Ledger writers upsert (and so lock) this row, which
-- orders them with the release job on PostgreSQL.
CREATE TABLE ledger_marks (
    workspace_id      TEXT PRIMARY KEY REFERENCES workspaces (id),
    released_through  TEXT NOT NULL
);
-- The release job moved commissions in order of available_at: what it had
-- moved is what was due up to the latest it moved.
INSERT INTO ledger_marks (workspace_id, released_through)
SELECT workspace_id, MAX(available_at) FROM commissions WHERE status = 'payable' GROUP BY workspace_id;
UPDATE commissions SET status = 'pending' WHERE status = 'payable';

DROP INDEX commissions_payable_idx;
DROP INDEX commissions_partner_idx;
DROP INDEX commissions_due_idx;
-- Partner ids are unique across workspaces; the queries still name the workspace.
CREATE INDEX commissions_partner_idx ON commissions (partner_id, id);
CREATE INDEX commissions_due_idx ON commissions (available_at) WHERE status = 'pending';
-- A batch's items are summed from this index alone (no row lookups).
DROP INDEX commissions_payout_idx;
CREATE INDEX commissions_payout_idx ON commissions (payout_id, partner_id, amount_minor) WHERE payout_id IS NOT NULL;
