-- The enablement library, the onboarding checklist and staff user
-- management.
--
-- A resource is either an uploaded file (its bytes in resource_files, kept
-- apart so that lists never read them) or an external link. It is visible
-- to every partner (`all_tiers`) or to the partners whose current tier is
-- one of its resource_tiers. Each download or open by a partner adds a
-- resource_downloads row and bumps the resource's counter in the same
-- transaction. Deleting a resource keeps its row (and download history)
-- with `deleted_at` set and drops its bytes.
CREATE TABLE resources (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    title         TEXT NOT NULL,
    description   TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('deck', 'one_pager', 'template', 'other')),
    all_tiers     BOOLEAN NOT NULL,
    url           TEXT,
    file_name     TEXT,
    content_type  TEXT,
    size_bytes    BIGINT,
    sha256        TEXT,
    downloads     BIGINT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    deleted_at    TEXT,
    CHECK ((url IS NULL) <> (file_name IS NULL))
);
CREATE INDEX resources_workspace_idx ON resources (workspace_id, id);

CREATE TABLE resource_files (
    resource_id   TEXT PRIMARY KEY REFERENCES resources (id),
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    bytes         BYTEA NOT NULL
);

CREATE TABLE resource_tiers (
    resource_id   TEXT NOT NULL REFERENCES resources (id),
    tier_slug     TEXT NOT NULL,
    PRIMARY KEY (resource_id, tier_slug)
);

CREATE TABLE resource_downloads (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    resource_id   TEXT NOT NULL REFERENCES resources (id),
    partner_id    TEXT NOT NULL REFERENCES partners (id),
    at            TEXT NOT NULL
);
CREATE INDEX resource_downloads_resource_idx ON resource_downloads (resource_id, id);

-- The workspace's onboarding checklist, in `sort_order` order, and which
-- items each partner has ticked. An item with `auto` set is done when the
-- partner's data says so (payout details added, first referral
-- registered) and is not ticked by hand.
CREATE TABLE onboarding_items (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    sort_order      BIGINT NOT NULL,
    title         TEXT NOT NULL,
    description   TEXT NOT NULL,
    link          TEXT,
    auto          TEXT CHECK (auto IS NULL OR auto IN ('payout_details', 'first_referral')),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX onboarding_items_workspace_idx ON onboarding_items (workspace_id, sort_order);

CREATE TABLE onboarding_progress (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    partner_id    TEXT NOT NULL REFERENCES partners (id),
    item_id       TEXT NOT NULL REFERENCES onboarding_items (id),
    done_at       TEXT NOT NULL,
    done_by       TEXT NOT NULL,
    PRIMARY KEY (partner_id, item_id)
);
CREATE INDEX onboarding_progress_item_idx ON onboarding_progress (item_id);

-- The console's staff page shows each user's last sign-in.
CREATE INDEX staff_sessions_user_idx ON staff_sessions (user_id, created_at);
