-- CRM connectors (HubSpot, Salesforce), one per workspace.
--
-- `crm_connections`: the connector's settings (no secrets) as JSON and its
-- secrets sealed; the polling and backfill cursors; the last error.
-- `crm_links`: per referral, the CRM records it is synced to and how the
-- last sync went (writes go through the outbox; this is their result).
-- `crm_seen_events`: webhook event ids already applied (delivery is at
-- least once). Accounts and open deals read from the CRM are cached in
-- `accounts` and `deals` (marked by `crm_id`), so conflict checks use them
-- exactly as they use native ones.
CREATE TABLE crm_connections (
    workspace_id     TEXT PRIMARY KEY REFERENCES workspaces (id),
    kind             TEXT NOT NULL CHECK (kind IN ('hubspot', 'salesforce')),
    settings         TEXT NOT NULL,
    secrets_sealed   TEXT NOT NULL,
    poll_cursor      TEXT,
    polled_at        TEXT,
    backfill_cursor  TEXT,
    backfilled_at    TEXT,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);

CREATE TABLE crm_links (
    referral_id   TEXT PRIMARY KEY REFERENCES referrals (id),
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    kind          TEXT NOT NULL CHECK (kind IN ('hubspot', 'salesforce')),
    company_id    TEXT,
    contact_id    TEXT,
    deal_id       TEXT,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'synced', 'failed')),
    last_error    TEXT,
    synced_at     TEXT,
    updated_at    TEXT NOT NULL
);
CREATE INDEX crm_links_deal_idx ON crm_links (workspace_id, deal_id);

CREATE TABLE crm_seen_events (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    event_id      TEXT NOT NULL,
    seen_at       TEXT NOT NULL,
    PRIMARY KEY (workspace_id, event_id)
);

ALTER TABLE accounts ADD COLUMN crm_id TEXT;
ALTER TABLE deals ADD COLUMN crm_id TEXT;
CREATE UNIQUE INDEX deals_crm_uq ON deals (workspace_id, crm_id) WHERE crm_id IS NOT NULL;
