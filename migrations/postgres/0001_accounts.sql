-- Accounts: users, browser sessions, workspaces, memberships, login throttling.
-- Ids are opaque strings; times are UTC seconds since the Unix epoch.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,   -- lower-cased at the edge
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,          -- argon2id PHC string, never the password
    created_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,          -- SHA-256 of the session cookie value
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_expiry ON sessions(expires_at);   -- for the janitor

CREATE TABLE workspaces (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    personal   BIGINT NOT NULL DEFAULT 0, -- 1 for the workspace every user gets at sign-up
    created_at BIGINT NOT NULL
);

CREATE TABLE memberships (
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role         TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX memberships_user ON memberships(user_id);

-- Failed-login counters per account and per client address, shared by every process.
CREATE TABLE login_failures (
    subject      TEXT PRIMARY KEY,        -- 'account:<email>' or 'address:<ip>'
    failures     BIGINT NOT NULL,
    window_start BIGINT NOT NULL
);
