-- The transactional outbox.
--
-- `pending_events`: a state change that someone may need to hear about
-- writes one row here in the same transaction as its audit row (the event
-- itself). The fan-out turns an event into outbox items and deletes it, in
-- one transaction; item keys are derived from the event, so a fan-out run
-- twice (two servers) still enqueues each item once.
--
-- `outbox`: one row per side effect (an email to one person, one Slack
-- message, one webhook call, one CRM write). `next_attempt_at` is also the
-- lease: a dispatcher that claims an item moves it into the future, so
-- nobody else takes it until the claim lapses (a crashed dispatcher's item
-- is retried after its lease). `idempotency_key` travels to the receiver.
CREATE TABLE pending_events (
    audit_id      TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id)
);

CREATE TABLE outbox (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id),
    channel          TEXT NOT NULL CHECK (channel IN ('email', 'slack', 'webhook', 'crm')),
    idempotency_key  TEXT NOT NULL,
    event            TEXT NOT NULL,
    target           TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts         BIGINT NOT NULL,
    next_attempt_at  TEXT NOT NULL,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    delivered_at     TEXT
);
CREATE UNIQUE INDEX outbox_key_uq ON outbox (idempotency_key);
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_workspace_idx ON outbox (workspace_id, id);

CREATE TABLE outbox_attempts (
    outbox_id    TEXT NOT NULL REFERENCES outbox (id),
    attempt      BIGINT NOT NULL,
    at           TEXT NOT NULL,
    ok           BOOLEAN NOT NULL,
    status_code  INTEGER,
    error        TEXT,
    duration_ms  BIGINT NOT NULL,
    PRIMARY KEY (outbox_id, attempt)
);

-- Outbound webhook endpoints. `events` is a JSON array of event types
-- (empty: every event). The signing secret is sealed like payout details.
CREATE TABLE webhook_endpoints (
    id             TEXT PRIMARY KEY,
    workspace_id   TEXT NOT NULL REFERENCES workspaces (id),
    url            TEXT NOT NULL,
    description    TEXT,
    events         TEXT NOT NULL,
    secret_sealed  TEXT NOT NULL,
    active         BOOLEAN NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_workspace_idx ON webhook_endpoints (workspace_id, id);

-- Per workspace: the Slack incoming webhook (sealed: the URL is the
-- credential), the partner managers' addresses, the stalled-deal threshold.
CREATE TABLE notification_settings (
    workspace_id     TEXT PRIMARY KEY REFERENCES workspaces (id),
    slack_sealed     TEXT,
    manager_emails   TEXT NOT NULL,
    stalled_days     BIGINT NOT NULL CHECK (stalled_days > 0),
    updated_at       TEXT NOT NULL
);

-- A partner contact's opt-outs, per topic; no row means subscribed.
CREATE TABLE notification_preferences (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    contact_id    TEXT NOT NULL REFERENCES partner_contacts (id),
    topic         TEXT NOT NULL CHECK (topic IN ('referral_updates', 'earnings', 'digest', 'announcements')),
    enabled       BOOLEAN NOT NULL,
    PRIMARY KEY (contact_id, topic)
);
