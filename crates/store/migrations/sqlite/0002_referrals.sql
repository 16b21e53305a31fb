-- Deal registration: rules of engagement, referrals, protection claims,
-- the referral timeline, partner-friendly stage labels and the log that
-- feeds the in-memory fuzzy name index.

CREATE TABLE rules_of_engagement (
    workspace_id        TEXT PRIMARY KEY REFERENCES workspaces (id),
    protection_days     INTEGER NOT NULL,
    auto_approve        BOOLEAN NOT NULL,
    fuzzy_threshold_bp  INTEGER NOT NULL CHECK (fuzzy_threshold_bp BETWEEN 5000 AND 10000),
    actions             TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);

CREATE TABLE referrals (
    id                      TEXT PRIMARY KEY,
    workspace_id            TEXT NOT NULL REFERENCES workspaces (id),
    partner_id              TEXT NOT NULL REFERENCES partners (id),
    status                  TEXT NOT NULL CHECK (status IN ('pending_review', 'approved', 'rejected', 'won', 'lost', 'expired', 'withdrawn')),
    channel                 TEXT NOT NULL CHECK (channel IN ('api', 'portal', 'link', 'email', 'csv')),
    company_name            TEXT NOT NULL,
    company_domain          TEXT NOT NULL,
    contact_name            TEXT NOT NULL,
    contact_email           TEXT NOT NULL,
    contact_title           TEXT,
    context                 TEXT,
    estimated_minor         BIGINT,
    estimated_currency      TEXT,
    outcome                 TEXT NOT NULL CHECK (outcome IN ('approved', 'review', 'rejected')),
    reasons                 TEXT NOT NULL,
    decided_at              TEXT NOT NULL,
    decided_by              TEXT NOT NULL,
    protection_starts_at    TEXT,
    protection_expires_at   TEXT,
    stage                   TEXT CHECK (stage IN ('new', 'qualified', 'meeting', 'proposal', 'negotiation', 'closed_won', 'closed_lost')),
    deal_id                 TEXT REFERENCES deals (id),
    amount_minor            BIGINT,
    amount_currency         TEXT,
    closed_at               TEXT,
    dispute_status          TEXT CHECK (dispute_status IN ('open', 'upheld', 'overturned')),
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL
);
CREATE INDEX referrals_workspace_idx ON referrals (workspace_id, id);
CREATE INDEX referrals_partner_idx ON referrals (workspace_id, partner_id, id);
CREATE INDEX referrals_status_idx ON referrals (workspace_id, status, id);
CREATE INDEX referrals_domain_idx ON referrals (workspace_id, company_domain);
CREATE INDEX referrals_email_idx ON referrals (workspace_id, contact_email);
CREATE INDEX referrals_expiry_idx ON referrals (status, protection_expires_at);

-- First registration wins: an approved referral claims its account's keys
-- ('domain:acme.com', 'email:ada@acme.com'); the unique index makes a
-- second concurrent claim of the same key fail in the database itself.
CREATE TABLE protection_claims (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    match_key     TEXT NOT NULL,
    referral_id   TEXT NOT NULL REFERENCES referrals (id),
    partner_id    TEXT NOT NULL REFERENCES partners (id),
    expires_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX protection_claims_key_uq ON protection_claims (workspace_id, match_key);
CREATE INDEX protection_claims_referral_idx ON protection_claims (referral_id);

CREATE TABLE referral_events (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    referral_id   TEXT NOT NULL REFERENCES referrals (id),
    at            TEXT NOT NULL,
    kind          TEXT NOT NULL,
    actor         TEXT NOT NULL,
    summary       TEXT NOT NULL
);
CREATE INDEX referral_events_referral_idx ON referral_events (referral_id, id);

CREATE TABLE stage_labels (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    stage         TEXT NOT NULL,
    label         TEXT NOT NULL,
    PRIMARY KEY (workspace_id, stage)
);

-- Append-only: each row says a name is (active) or is no longer (inactive)
-- a fuzzy-match target. Servers tail it by seq to keep their index current.
CREATE TABLE name_index_log (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    entity_id     TEXT NOT NULL,
    name          TEXT NOT NULL,
    active        BOOLEAN NOT NULL
);
CREATE INDEX name_index_log_workspace_idx ON name_index_log (workspace_id, seq);

INSERT INTO name_index_log (workspace_id, entity_id, name, active)
SELECT workspace_id, id, name, TRUE FROM accounts ORDER BY id;
