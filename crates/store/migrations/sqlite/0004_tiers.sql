-- Partner tiers: a workspace's ladder, each partner's evaluation state and
-- the append-only history of tier changes. The partner's current tier
-- stays in `partners.tier`, which the commission at Closed Won reads.
-- A ladder has one measure: 'won_count', or 'won_revenue' in one currency;
-- thresholds are counts or minor units of that currency.

CREATE TABLE tier_ladders (
    workspace_id  TEXT PRIMARY KEY REFERENCES workspaces (id),
    measure       TEXT NOT NULL CHECK (measure IN ('won_count', 'won_revenue')),
    currency      TEXT,
    grace_days    INTEGER NOT NULL CHECK (grace_days >= 0),
    updated_at    TEXT NOT NULL,
    CHECK ((measure = 'won_revenue') = (currency IS NOT NULL))
);

CREATE TABLE tiers (
    workspace_id              TEXT NOT NULL REFERENCES tier_ladders (workspace_id),
    slug                      TEXT NOT NULL,
    name                      TEXT NOT NULL,
    benefits                  TEXT NOT NULL,
    threshold_minor_or_count  BIGINT NOT NULL CHECK (threshold_minor_or_count >= 0),
    position                  INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, slug)
);

-- What the last evaluation that changed anything knew of a partner: the
-- tier it judged (a tier set by hand since then starts afresh), since when
-- the partner held it, and since when it has been below its threshold.
CREATE TABLE partner_tier_state (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    partner_id    TEXT NOT NULL REFERENCES partners (id),
    tier          TEXT,
    tier_since    TEXT NOT NULL,
    below_since   TEXT,
    evaluated_at  TEXT NOT NULL,
    PRIMARY KEY (workspace_id, partner_id)
);

-- Append-only: every tier change, with the measure that caused it.
CREATE TABLE partner_tier_history (
    seq            INTEGER PRIMARY KEY,
    workspace_id   TEXT NOT NULL REFERENCES workspaces (id),
    partner_id     TEXT NOT NULL REFERENCES partners (id),
    from_tier      TEXT,
    to_tier        TEXT,
    measure        TEXT NOT NULL CHECK (measure IN ('won_count', 'won_revenue')),
    measure_value  BIGINT NOT NULL,
    currency       TEXT,
    at             TEXT NOT NULL,
    actor          TEXT NOT NULL,
    reason         TEXT NOT NULL
);
CREATE INDEX partner_tier_history_partner_idx ON partner_tier_history (workspace_id, partner_id, seq);
