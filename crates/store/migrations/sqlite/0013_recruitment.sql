-- Recruitment: the ideal-partner criteria of a workspace and the partner
-- applications of the public form, each scored against them.
-- Weights and scores are whole numbers 0–100 (no floating point), money in
-- minor units of the workspace currency. An application belongs to exactly
-- one partner (status `applied` until decided); its score breakdown is
-- stored with it, with the weights it was given by.
CREATE TABLE ideal_partner_criteria (
    workspace_id           TEXT PRIMARY KEY REFERENCES workspaces (id),
    -- JSON array of normalised industry names.
    target_industries      TEXT NOT NULL,
    deal_size_min_minor    BIGINT,
    deal_size_max_minor    BIGINT,
    referrals_per_quarter  INTEGER NOT NULL CHECK (referrals_per_quarter BETWEEN 1 AND 100),
    weight_audience        INTEGER NOT NULL CHECK (weight_audience BETWEEN 0 AND 100),
    weight_deal_size       INTEGER NOT NULL CHECK (weight_deal_size BETWEEN 0 AND 100),
    weight_credibility     INTEGER NOT NULL CHECK (weight_credibility BETWEEN 0 AND 100),
    weight_responsiveness  INTEGER NOT NULL CHECK (weight_responsiveness BETWEEN 0 AND 100),
    updated_at             TEXT NOT NULL,
    CHECK ((deal_size_min_minor IS NULL) = (deal_size_max_minor IS NULL))
);

CREATE TABLE partner_applications (
    id                     TEXT PRIMARY KEY,
    workspace_id           TEXT NOT NULL REFERENCES workspaces (id),
    partner_id             TEXT NOT NULL REFERENCES partners (id),
    status                 TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    -- JSON array of normalised industry names.
    industries             TEXT NOT NULL,
    typical_deal_minor     BIGINT NOT NULL,
    currency               TEXT NOT NULL,
    years_in_business      INTEGER NOT NULL,
    client_count           INTEGER NOT NULL,
    referrals_per_quarter  INTEGER NOT NULL,
    response_time          TEXT NOT NULL CHECK (response_time IN ('same_day', 'two_days', 'week')),
    message                TEXT,
    score_total            INTEGER NOT NULL,
    score_audience         INTEGER NOT NULL,
    score_deal_size        INTEGER NOT NULL,
    score_credibility      INTEGER NOT NULL,
    score_responsiveness   INTEGER NOT NULL,
    weight_audience        INTEGER NOT NULL,
    weight_deal_size       INTEGER NOT NULL,
    weight_credibility     INTEGER NOT NULL,
    weight_responsiveness  INTEGER NOT NULL,
    decided_at             TEXT,
    decided_by             TEXT,
    decision_reason        TEXT,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL
);
CREATE UNIQUE INDEX partner_applications_partner_uq ON partner_applications (partner_id);
-- The console's queue: one status, best score first.
CREATE INDEX partner_applications_queue_idx ON partner_applications (workspace_id, status, score_total, created_at);
