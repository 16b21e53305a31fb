-- partnerloop schema, version 1: workspaces, keys, partners, accounts,
-- deals, commission plans, audit log, idempotency keys (PostgreSQL).
-- Portable by rule: ids TEXT, money BIGINT minor units + currency TEXT,
-- enums TEXT with CHECK, times TEXT in fixed-width RFC 3339 UTC with
-- microseconds ('2026-01-31T09:00:00.000000Z'), which sorts correctly as
-- text on both engines. The PostgreSQL migration is the same schema.

CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    slug        TEXT NOT NULL,
    name        TEXT NOT NULL,
    currency    TEXT NOT NULL DEFAULT 'USD',
    created_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX workspaces_slug_uq ON workspaces (slug);

CREATE TABLE instance_settings (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

CREATE TABLE commission_plans (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id),
    name             TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('percent', 'flat', 'tiered')),
    rate             TEXT,
    flat_minor       BIGINT,
    flat_currency    TEXT,
    tier_rates       TEXT,
    cap_minor        BIGINT,
    cap_currency     TEXT,
    minimum_minor    BIGINT,
    minimum_currency TEXT,
    hold_days        INTEGER NOT NULL CHECK (hold_days >= 0),
    is_default       BOOLEAN NOT NULL,
    created_at       TEXT NOT NULL,
    CHECK ((kind = 'percent') = (rate IS NOT NULL)),
    CHECK ((kind = 'flat') = (flat_minor IS NOT NULL AND flat_currency IS NOT NULL)),
    CHECK ((kind = 'tiered') = (tier_rates IS NOT NULL))
);
CREATE UNIQUE INDEX commission_plans_name_uq ON commission_plans (workspace_id, name);
CREATE UNIQUE INDEX commission_plans_default_uq ON commission_plans (workspace_id) WHERE is_default;

CREATE TABLE partners (
    id                  TEXT PRIMARY KEY,
    workspace_id        TEXT NOT NULL REFERENCES workspaces (id),
    name                TEXT NOT NULL,
    type                TEXT NOT NULL CHECK (type IN ('consultant', 'agency', 'technology', 'customer', 'other')),
    status              TEXT NOT NULL CHECK (status IN ('applied', 'active', 'paused', 'archived')),
    tier                TEXT,
    referral_code       TEXT NOT NULL,
    website             TEXT,
    commission_plan_id  TEXT REFERENCES commission_plans (id),
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    first_referral_at   TEXT
);
CREATE UNIQUE INDEX partners_referral_code_uq ON partners (referral_code);
CREATE INDEX partners_workspace_idx ON partners (workspace_id, id);

CREATE TABLE partner_contacts (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    partner_id    TEXT NOT NULL REFERENCES partners (id),
    name          TEXT NOT NULL,
    email         TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX partner_contacts_email_uq ON partner_contacts (workspace_id, email);
CREATE INDEX partner_contacts_partner_idx ON partner_contacts (partner_id);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    kind          TEXT NOT NULL CHECK (kind IN ('admin', 'partner')),
    partner_id    TEXT REFERENCES partners (id),
    name          TEXT,
    token_hash    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    revoked_at    TEXT,
    CHECK ((kind = 'partner') = (partner_id IS NOT NULL))
);
CREATE UNIQUE INDEX api_keys_token_hash_uq ON api_keys (token_hash);

CREATE TABLE accounts (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    name          TEXT NOT NULL,
    domain        TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('prospect', 'customer', 'off_limits')),
    owner_email   TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX accounts_domain_uq ON accounts (workspace_id, domain);

CREATE TABLE deals (
    id              TEXT PRIMARY KEY,
    workspace_id    TEXT NOT NULL REFERENCES workspaces (id),
    name            TEXT NOT NULL,
    company_name    TEXT NOT NULL,
    company_domain  TEXT,
    stage           TEXT NOT NULL CHECK (stage IN ('new', 'qualified', 'meeting', 'proposal', 'negotiation', 'closed_won', 'closed_lost')),
    amount_minor    BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    source          TEXT NOT NULL CHECK (source IN ('direct', 'partner')),
    owner_email     TEXT,
    created_at      TEXT NOT NULL,
    closed_at       TEXT,
    updated_at      TEXT NOT NULL
);
CREATE INDEX deals_workspace_idx ON deals (workspace_id, id);
CREATE INDEX deals_domain_idx ON deals (workspace_id, company_domain);

CREATE TABLE audit_log (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    at            TEXT NOT NULL,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    entity        TEXT NOT NULL,
    entity_id     TEXT NOT NULL,
    before_state  TEXT,
    after_state   TEXT
);
CREATE INDEX audit_log_entity_idx ON audit_log (workspace_id, entity_id, id);

-- scope = the token's key id; status NULL while the first request runs.
CREATE TABLE idempotency_keys (
    scope          TEXT NOT NULL,
    key            TEXT NOT NULL,
    request_hash   TEXT NOT NULL,
    status         INTEGER,
    content_type   TEXT,
    body           TEXT,
    created_at     TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);
