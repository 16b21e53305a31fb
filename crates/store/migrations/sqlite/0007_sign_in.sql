-- Partner sign-in without a password. A sign-in link is single use: the
-- redemption is one UPDATE guarded by `used_at IS NULL`, so of any number
-- of concurrent redemptions one wins. Only SHA-256 hashes of link and
-- session tokens are stored. A referral's read-only status links carry a
-- version; bumping it revokes every link issued before.
CREATE TABLE sign_in_links (
    token_hash    TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    partner_id    TEXT NOT NULL REFERENCES partners (id),
    contact_id    TEXT NOT NULL REFERENCES partner_contacts (id),
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    used_at       TEXT
);

CREATE TABLE portal_sessions (
    token_hash    TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    partner_id    TEXT NOT NULL REFERENCES partners (id),
    contact_id    TEXT NOT NULL REFERENCES partner_contacts (id),
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);

CREATE TABLE status_link_versions (
    referral_id   TEXT PRIMARY KEY REFERENCES referrals (id),
    version       BIGINT NOT NULL
);
