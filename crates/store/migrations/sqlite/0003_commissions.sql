-- Commissions ledger, partner payout details, payout batches; volume
-- bands and recurring plans; customer payments on won referrals.
-- `commissions` holds one row per accrual (a won referral) or adjustment
-- (a correction of a paid one); its status moves, and every move appends a
-- row to `commission_entries`, which is never updated or deleted.
-- Payout details and the payer's bank data are sealed (encrypted) by the
-- application; only a masked view is stored in clear.

ALTER TABLE commission_plans ADD COLUMN volume_bands TEXT;
ALTER TABLE commission_plans ADD COLUMN band_period TEXT CHECK (band_period IN ('month', 'quarter', 'year'));
ALTER TABLE commission_plans ADD COLUMN recurring_months INTEGER;
ALTER TABLE commission_plans ADD COLUMN recurring_hold_from TEXT CHECK (recurring_hold_from IN ('closed_won', 'first_payment'));

-- Customer payments recorded on won referrals: what recurring plans pay a share of.
CREATE TABLE referral_payments (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    referral_id   TEXT NOT NULL REFERENCES referrals (id),
    amount_minor  BIGINT NOT NULL CHECK (amount_minor > 0),
    currency      TEXT NOT NULL,
    paid_at       TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL
);
CREATE INDEX referral_payments_referral_idx ON referral_payments (workspace_id, referral_id, paid_at);

CREATE TABLE commissions (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    partner_id    TEXT NOT NULL REFERENCES partners (id),
    referral_id   TEXT NOT NULL REFERENCES referrals (id),
    plan_id       TEXT REFERENCES commission_plans (id),
    kind          TEXT NOT NULL CHECK (kind IN ('accrual', 'recurring', 'adjustment')),
    won_seq       INTEGER NOT NULL CHECK (won_seq >= 1),
    amount_minor  BIGINT NOT NULL,
    currency      TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'payable', 'paid', 'reversed')),
    rule          TEXT NOT NULL,
    available_at  TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    payout_id     TEXT,
    adjusts_id    TEXT REFERENCES commissions (id),
    -- The customer payment a recurring commission (or its adjustment) is a
    -- share of; '' for the others.
    payment_id    TEXT NOT NULL DEFAULT '',
    CHECK ((kind = 'adjustment') = (adjusts_id IS NOT NULL)),
    CHECK (kind = 'adjustment' OR amount_minor >= 0),
    CHECK (kind <> 'accrual' OR payment_id = ''),
    CHECK (kind <> 'recurring' OR payment_id <> '')
);
-- Exactly one accrual per win of a referral and one commission per customer
-- payment, whatever the concurrency (and at most one adjustment of each);
-- also the index of a referral's commissions.
CREATE UNIQUE INDEX commissions_accrual_uq ON commissions (workspace_id, referral_id, won_seq, kind, payment_id);
-- A paid commission is corrected at most once.
CREATE UNIQUE INDEX commissions_adjusts_uq ON commissions (adjusts_id) WHERE adjusts_id IS NOT NULL;
CREATE INDEX commissions_partner_idx ON commissions (workspace_id, partner_id, id);
CREATE INDEX commissions_due_idx ON commissions (available_at, id) WHERE status = 'pending';
CREATE INDEX commissions_payable_idx ON commissions (workspace_id, currency, partner_id) WHERE status = 'payable' AND payout_id IS NULL;
CREATE INDEX commissions_payout_idx ON commissions (payout_id, partner_id) WHERE payout_id IS NOT NULL;

-- Append-only: why each commission moved. `amount_minor` is the amount
-- the entry concerns (in the commission's currency): + for accrued, − for
-- reversed and adjusted (the adjustment's own negative amount), the
-- commission's amount otherwise. The partner, referral, plan and rule are
-- the commission's, which never change.
CREATE TABLE commission_entries (
    seq            INTEGER PRIMARY KEY,
    workspace_id   TEXT NOT NULL REFERENCES workspaces (id),
    commission_id  TEXT NOT NULL REFERENCES commissions (id),
    kind           TEXT NOT NULL CHECK (kind IN ('accrued', 'released', 'reversed', 'adjusted', 'batched', 'unbatched', 'paid')),
    amount_minor   BIGINT NOT NULL,
    at             TEXT NOT NULL,
    actor          TEXT NOT NULL,
    reason         TEXT NOT NULL,
    payout_id      TEXT
);
CREATE INDEX commission_entries_commission_idx ON commission_entries (commission_id, seq);

CREATE TABLE payout_details (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    partner_id    TEXT NOT NULL REFERENCES partners (id),
    method        TEXT NOT NULL CHECK (method IN ('paypal', 'sepa', 'ach', 'credit')),
    sealed        TEXT NOT NULL,
    masked        TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (workspace_id, partner_id)
);

CREATE TABLE payout_settings (
    workspace_id      TEXT PRIMARY KEY REFERENCES workspaces (id),
    minimum_minor     BIGINT NOT NULL CHECK (minimum_minor >= 0),
    minimum_currency  TEXT NOT NULL,
    sealed            TEXT NOT NULL,
    masked            TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);

CREATE TABLE payouts (
    id                TEXT PRIMARY KEY,
    workspace_id      TEXT NOT NULL REFERENCES workspaces (id),
    currency          TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('draft', 'paid', 'cancelled')),
    total_minor       BIGINT NOT NULL,
    commission_count  BIGINT NOT NULL,
    created_at        TEXT NOT NULL,
    created_by        TEXT NOT NULL,
    paid_at           TEXT,
    reference         TEXT,
    updated_at        TEXT NOT NULL
);
CREATE INDEX payouts_workspace_idx ON payouts (workspace_id, id);

CREATE TABLE payout_items (
    payout_id         TEXT NOT NULL REFERENCES payouts (id),
    partner_id        TEXT NOT NULL REFERENCES partners (id),
    amount_minor      BIGINT NOT NULL,
    commission_count  BIGINT NOT NULL,
    method            TEXT NOT NULL,
    PRIMARY KEY (payout_id, partner_id)
);
