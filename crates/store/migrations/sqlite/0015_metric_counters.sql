-- Counters behind the all-time KPIs, so that a report reads thousands of
-- rows instead of every referral: registrations per UTC day, and the open
-- pipeline (approved referrals) per stage and currency.
--
-- Writers only append signed deltas (triggers on `referrals`, so every
-- write path — registration, decisions, the pipeline, CRM changes, import,
-- expiry, erasure — keeps them right in its own transaction, and nothing
-- is ever updated in place, so concurrent writers never wait on a counter
-- row); a reader sums them; the scheduler folds them into one row per key
-- (`SqlStore::compact_metric_counters`).
CREATE TABLE metric_deltas (
    seq          INTEGER PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    -- 'registered': `bucket` is the UTC day of created_at; 'pipeline':
    -- `bucket` is the stage ('' before the first) and `currency` the value's
    -- (the won amount's, else the estimate's; '' for none).
    kind         TEXT NOT NULL CHECK (kind IN ('registered', 'pipeline')),
    bucket       TEXT NOT NULL,
    currency     TEXT NOT NULL,
    n            BIGINT NOT NULL,
    value_minor  BIGINT NOT NULL
);
CREATE INDEX metric_deltas_key_idx ON metric_deltas (workspace_id, kind, bucket, currency, n, value_minor);

INSERT INTO metric_deltas (workspace_id, kind, bucket, currency, n, value_minor)
SELECT workspace_id, 'registered', substr(created_at, 1, 10), '', COUNT(*), 0
FROM referrals GROUP BY workspace_id, substr(created_at, 1, 10);

INSERT INTO metric_deltas (workspace_id, kind, bucket, currency, n, value_minor)
SELECT workspace_id, 'pipeline', COALESCE(stage, ''), COALESCE(amount_currency, estimated_currency, ''), COUNT(*),
       COALESCE(SUM(COALESCE(amount_minor, estimated_minor, 0)), 0)
FROM referrals WHERE status = 'approved'
GROUP BY workspace_id, COALESCE(stage, ''), COALESCE(amount_currency, estimated_currency, '');

CREATE TRIGGER referrals_metric_insert AFTER INSERT ON referrals
BEGIN
    INSERT INTO metric_deltas (workspace_id, kind, bucket, currency, n, value_minor)
    SELECT NEW.workspace_id, 'registered', substr(NEW.created_at, 1, 10), '', 1, 0
    UNION ALL
    SELECT NEW.workspace_id, 'pipeline', COALESCE(NEW.stage, ''), COALESCE(NEW.amount_currency, NEW.estimated_currency, ''), 1,
           COALESCE(NEW.amount_minor, NEW.estimated_minor, 0)
    WHERE NEW.status = 'approved';
END;

CREATE TRIGGER referrals_metric_update AFTER UPDATE ON referrals
WHEN OLD.workspace_id IS NOT NEW.workspace_id OR substr(OLD.created_at, 1, 10) IS NOT substr(NEW.created_at, 1, 10)
  OR OLD.status IS NOT NEW.status OR OLD.stage IS NOT NEW.stage
  OR OLD.amount_minor IS NOT NEW.amount_minor OR OLD.amount_currency IS NOT NEW.amount_currency
  OR OLD.estimated_minor IS NOT NEW.estimated_minor OR OLD.estimated_currency IS NOT NEW.estimated_currency
BEGIN
    INSERT INTO metric_deltas (workspace_id, kind, bucket, currency, n, value_minor)
    SELECT OLD.workspace_id, 'registered', substr(OLD.created_at, 1, 10), '', -1, 0
    WHERE OLD.workspace_id <> NEW.workspace_id OR substr(OLD.created_at, 1, 10) <> substr(NEW.created_at, 1, 10)
    UNION ALL
    SELECT NEW.workspace_id, 'registered', substr(NEW.created_at, 1, 10), '', 1, 0
    WHERE OLD.workspace_id <> NEW.workspace_id OR substr(OLD.created_at, 1, 10) <> substr(NEW.created_at, 1, 10)
    UNION ALL
    SELECT OLD.workspace_id, 'pipeline', COALESCE(OLD.stage, ''), COALESCE(OLD.amount_currency, OLD.estimated_currency, ''), -1,
           -COALESCE(OLD.amount_minor, OLD.estimated_minor, 0)
    WHERE OLD.status = 'approved'
    UNION ALL
    SELECT NEW.workspace_id, 'pipeline', COALESCE(NEW.stage, ''), COALESCE(NEW.amount_currency, NEW.estimated_currency, ''), 1,
           COALESCE(NEW.amount_minor, NEW.estimated_minor, 0)
    WHERE NEW.status = 'approved';
END;

CREATE TRIGGER referrals_metric_delete AFTER DELETE ON referrals
BEGIN
    INSERT INTO metric_deltas (workspace_id, kind, bucket, currency, n, value_minor)
    SELECT OLD.workspace_id, 'registered', substr(OLD.created_at, 1, 10), '', -1, 0
    UNION ALL
    SELECT OLD.workspace_id, 'pipeline', COALESCE(OLD.stage, ''), COALESCE(OLD.amount_currency, OLD.estimated_currency, ''), -1,
           -COALESCE(OLD.amount_minor, OLD.estimated_minor, 0)
    WHERE OLD.status = 'approved';
END;
