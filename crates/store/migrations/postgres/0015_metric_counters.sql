-- Counters behind the all-time and current KPIs, so that a report reads
-- thousands of rows instead of every referral: registrations per UTC day,
-- the open pipeline (approved referrals) per stage and currency, and wins
-- and losses per partner (and currency) over all time.
--
-- Writers only append signed deltas (triggers on `referrals`, so every
-- write path — registration, decisions, the pipeline, CRM changes, import,
-- expiry, erasure — keeps them right in its own transaction, and nothing
-- is ever updated in place, so concurrent writers on several servers never
-- wait on a counter row nor deadlock over one); a reader sums them; the
-- scheduler folds them into one row per key (`MetricsStore::compact_metric_counters`).
CREATE TABLE metric_deltas (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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

-- One referral's contribution to each counter, signed by `factor` (the same
-- definitions as the SQLite view `metric_contributions`). A won or lost
-- referral counts once it has its close time, as the period queries count it.
CREATE FUNCTION metric_deltas_of(r referrals, factor BIGINT) RETURNS void LANGUAGE sql AS $$
    INSERT INTO metric_deltas (workspace_id, kind, bucket, currency, n, value_minor, seconds)
    SELECT r.workspace_id, 'registered', substr(r.created_at, 1, 10), '', factor, 0, 0
    UNION ALL
    SELECT r.workspace_id, 'pipeline', COALESCE(r.stage, ''), COALESCE(r.amount_currency, r.estimated_currency, ''), factor,
           factor * COALESCE(r.amount_minor, r.estimated_minor, 0), 0
    WHERE r.status = 'approved'
    UNION ALL
    SELECT r.workspace_id, 'won', r.partner_id, COALESCE(r.amount_currency, ''), factor, factor * COALESCE(r.amount_minor, 0),
           factor * (CAST(FLOOR(EXTRACT(EPOCH FROM CAST(r.closed_at AS TIMESTAMPTZ))) AS BIGINT)
                   - CAST(FLOOR(EXTRACT(EPOCH FROM CAST(r.created_at AS TIMESTAMPTZ))) AS BIGINT))
    WHERE r.status = 'won' AND r.closed_at IS NOT NULL
    UNION ALL
    SELECT r.workspace_id, 'lost', r.partner_id, '', factor, 0, 0
    WHERE r.status = 'lost' AND r.closed_at IS NOT NULL;
$$;

SELECT metric_deltas_of(r, 1) FROM referrals r;

CREATE FUNCTION referrals_metric_deltas() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM metric_deltas_of(OLD, -1);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM metric_deltas_of(NEW, 1);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER referrals_metric_insert AFTER INSERT ON referrals
    FOR EACH ROW EXECUTE FUNCTION referrals_metric_deltas();
-- Only when something counted changes.
CREATE TRIGGER referrals_metric_update AFTER UPDATE ON referrals
    FOR EACH ROW WHEN (
        OLD.workspace_id IS DISTINCT FROM NEW.workspace_id OR OLD.partner_id IS DISTINCT FROM NEW.partner_id
        OR OLD.created_at IS DISTINCT FROM NEW.created_at OR OLD.closed_at IS DISTINCT FROM NEW.closed_at
        OR OLD.status IS DISTINCT FROM NEW.status OR OLD.stage IS DISTINCT FROM NEW.stage
        OR OLD.amount_minor IS DISTINCT FROM NEW.amount_minor OR OLD.amount_currency IS DISTINCT FROM NEW.amount_currency
        OR OLD.estimated_minor IS DISTINCT FROM NEW.estimated_minor OR OLD.estimated_currency IS DISTINCT FROM NEW.estimated_currency
    )
    EXECUTE FUNCTION referrals_metric_deltas();
CREATE TRIGGER referrals_metric_delete AFTER DELETE ON referrals
    FOR EACH ROW EXECUTE FUNCTION referrals_metric_deltas();
