-- Counters behind the all-time and current KPIs, so that a report reads
-- thousands of rows instead of every referral: registrations per UTC day,
-- the open pipeline (approved referrals) per stage and currency, and wins
-- and losses per partner (and currency) over all time.
--
-- Writers only append signed deltas (triggers on `referrals`, so every
-- write path — registration, decisions, the pipeline, CRM changes, import,
-- expiry, erasure — keeps them right in its own transaction, and nothing
-- is ever updated in place, so concurrent writers never wait on a counter
-- row); a reader sums them; the scheduler folds them into one row per key
-- (`MetricsStore::compact_metric_counters`).
CREATE TABLE metric_deltas (
    seq          INTEGER PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    -- 'registered': `bucket` is the UTC day of created_at.
    -- 'pipeline': `bucket` is the stage ('' before the first), `currency`
    --   the value's (the won amount's, else the estimate's; '' for none).
    -- 'won': `bucket` is the partner, `currency` the amount's; `seconds`
    --   the sales cycle (whole seconds from registration to close).
    -- 'lost': `bucket` is the partner.
    kind         TEXT NOT NULL CHECK (kind IN ('registered', 'pipeline', 'won', 'lost')),
    bucket       TEXT NOT NULL,
    currency     TEXT NOT NULL,
    n            BIGINT NOT NULL,
    value_minor  BIGINT NOT NULL,
    seconds      BIGINT NOT NULL
);
CREATE INDEX metric_deltas_key_idx ON metric_deltas (workspace_id, kind, bucket, currency, n, value_minor, seconds);

-- One referral's contribution to each counter, signed by `sign`: the rows
-- the triggers append for OLD (-1) and NEW (+1). A won or lost referral
-- counts once it has its close time, as the period queries count it.
CREATE VIEW metric_contributions AS
SELECT id, workspace_id, 'registered' AS kind, substr(created_at, 1, 10) AS bucket, '' AS currency, 1 AS n, 0 AS value_minor, 0 AS seconds
FROM referrals
UNION ALL
SELECT id, workspace_id, 'pipeline', COALESCE(stage, ''), COALESCE(amount_currency, estimated_currency, ''), 1,
       COALESCE(amount_minor, estimated_minor, 0), 0
FROM referrals WHERE status = 'approved'
UNION ALL
SELECT id, workspace_id, 'won', partner_id, COALESCE(amount_currency, ''), 1, COALESCE(amount_minor, 0),
       unixepoch(closed_at) - unixepoch(created_at)
FROM referrals WHERE status = 'won' AND closed_at IS NOT NULL
UNION ALL
SELECT id, workspace_id, 'lost', partner_id, '', 1, 0, 0
FROM referrals WHERE status = 'lost' AND closed_at IS NOT NULL;

INSERT INTO metric_deltas (workspace_id, kind, bucket, currency, n, value_minor, seconds)
SELECT workspace_id, kind, bucket, currency, SUM(n), SUM(value_minor), SUM(seconds)
FROM metric_contributions GROUP BY workspace_id, kind, bucket, currency;

-- A registration is the hot path: its contribution straight from NEW (the
-- same definitions as the view, without reading the row back).
CREATE TRIGGER referrals_metric_insert AFTER INSERT ON referrals
BEGIN
    INSERT INTO metric_deltas (workspace_id, kind, bucket, currency, n, value_minor, seconds)
    SELECT NEW.workspace_id, 'registered', substr(NEW.created_at, 1, 10), '', 1, 0, 0
    UNION ALL
    SELECT NEW.workspace_id, 'pipeline', COALESCE(NEW.stage, ''), COALESCE(NEW.amount_currency, NEW.estimated_currency, ''), 1,
           COALESCE(NEW.amount_minor, NEW.estimated_minor, 0), 0
    WHERE NEW.status = 'approved'
    UNION ALL
    SELECT NEW.workspace_id, 'won', NEW.partner_id, COALESCE(NEW.amount_currency, ''), 1, COALESCE(NEW.amount_minor, 0),
           unixepoch(NEW.closed_at) - unixepoch(NEW.created_at)
    WHERE NEW.status = 'won' AND NEW.closed_at IS NOT NULL
    UNION ALL
    SELECT NEW.workspace_id, 'lost', NEW.partner_id, '', 1, 0, 0
    WHERE NEW.status = 'lost' AND NEW.closed_at IS NOT NULL;
END;

-- Before the row changes: take its old contribution out; after: put the
-- new one in. Only when something counted changes.
CREATE TRIGGER referrals_metric_update_old BEFORE UPDATE ON referrals
WHEN OLD.workspace_id IS NOT NEW.workspace_id OR OLD.partner_id IS NOT NEW.partner_id OR OLD.created_at IS NOT NEW.created_at
  OR OLD.closed_at IS NOT NEW.closed_at OR OLD.status IS NOT NEW.status OR OLD.stage IS NOT NEW.stage
  OR OLD.amount_minor IS NOT NEW.amount_minor OR OLD.amount_currency IS NOT NEW.amount_currency
  OR OLD.estimated_minor IS NOT NEW.estimated_minor OR OLD.estimated_currency IS NOT NEW.estimated_currency
BEGIN
    INSERT INTO metric_deltas (workspace_id, kind, bucket, currency, n, value_minor, seconds)
    SELECT workspace_id, kind, bucket, currency, -n, -value_minor, -seconds FROM metric_contributions WHERE id = OLD.id;
END;

CREATE TRIGGER referrals_metric_update_new AFTER UPDATE ON referrals
WHEN OLD.workspace_id IS NOT NEW.workspace_id OR OLD.partner_id IS NOT NEW.partner_id OR OLD.created_at IS NOT NEW.created_at
  OR OLD.closed_at IS NOT NEW.closed_at OR OLD.status IS NOT NEW.status OR OLD.stage IS NOT NEW.stage
  OR OLD.amount_minor IS NOT NEW.amount_minor OR OLD.amount_currency IS NOT NEW.amount_currency
  OR OLD.estimated_minor IS NOT NEW.estimated_minor OR OLD.estimated_currency IS NOT NEW.estimated_currency
BEGIN
    INSERT INTO metric_deltas (workspace_id, kind, bucket, currency, n, value_minor, seconds)
    SELECT workspace_id, kind, bucket, currency, n, value_minor, seconds FROM metric_contributions WHERE id = NEW.id;
END;

CREATE TRIGGER referrals_metric_delete BEFORE DELETE ON referrals
BEGIN
    INSERT INTO metric_deltas (workspace_id, kind, bucket, currency, n, value_minor, seconds)
    SELECT workspace_id, kind, bucket, currency, -n, -value_minor, -seconds FROM metric_contributions WHERE id = OLD.id;
END;
