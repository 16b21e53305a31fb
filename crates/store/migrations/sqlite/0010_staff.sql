-- Staff users of the web console and how they sign in. A user may have a
-- password (argon2id, PHC string) or only ever use mailed single-use links.
-- Only SHA-256 hashes of link and session tokens are stored. A link is
-- redeemed by one UPDATE guarded by `used_at IS NULL` and its expiry; a
-- session ends at its expiry or when revoked (sign-out, a disabled user).
CREATE TABLE staff_users (
    id             TEXT PRIMARY KEY,
    workspace_id   TEXT NOT NULL REFERENCES workspaces (id),
    email          TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('admin', 'manager', 'finance', 'sales')),
    password_hash  TEXT,
    disabled       BOOLEAN NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE UNIQUE INDEX staff_users_email_uq ON staff_users (workspace_id, email);
CREATE INDEX staff_users_email_idx ON staff_users (email);

CREATE TABLE staff_sign_in_links (
    token_hash    TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    user_id       TEXT NOT NULL REFERENCES staff_users (id),
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    used_at       TEXT
);

CREATE TABLE staff_sessions (
    token_hash    TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    user_id       TEXT NOT NULL REFERENCES staff_users (id),
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    revoked_at    TEXT
);
