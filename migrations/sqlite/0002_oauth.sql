-- OAuth applications, the grants users give them, and everything issued under a grant.
-- Every code, token and API key row hangs off a grant (ON DELETE CASCADE, and lookups require
-- grants.revoked_at IS NULL), so deleting an app or revoking a grant kills all of them at once.

CREATE TABLE oauth_apps (
    client_id          TEXT PRIMARY KEY,
    owner_user_id      TEXT REFERENCES users(id) ON DELETE CASCADE,
    owner_workspace_id TEXT REFERENCES workspaces(id) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    scopes             TEXT NOT NULL,          -- space-separated registered scopes
    redirect_uris      TEXT NOT NULL,          -- newline-separated, matched exactly
    logo_url           TEXT,
    homepage_url       TEXT,
    client_type        TEXT NOT NULL CHECK (client_type IN ('confidential', 'public')),
    secret_hash        TEXT,                   -- SHA-256 of the client secret; NULL for public clients
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    CHECK ((owner_user_id IS NULL) <> (owner_workspace_id IS NULL))
);
CREATE INDEX oauth_apps_user ON oauth_apps(owner_user_id);
CREATE INDEX oauth_apps_workspace ON oauth_apps(owner_workspace_id);

-- One row per consent: this user let this app act on this workspace with these scopes.
CREATE TABLE grants (
    id           TEXT PRIMARY KEY,
    client_id    TEXT NOT NULL REFERENCES oauth_apps(client_id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    scopes       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER                      -- set once; a revoked grant authorizes nothing
);
CREATE INDEX grants_user ON grants(user_id);
CREATE INDEX grants_workspace ON grants(workspace_id);
CREATE INDEX grants_client ON grants(client_id);

-- A pending authorization request, kept server-side under an opaque id (the consent challenge)
-- while the user logs in and decides.
CREATE TABLE authorization_requests (
    challenge_hash        TEXT PRIMARY KEY,    -- SHA-256 of the consent challenge
    client_id             TEXT NOT NULL REFERENCES oauth_apps(client_id) ON DELETE CASCADE,
    redirect_uri          TEXT NOT NULL,         -- where to send the answer
    redirect_uri_given    INTEGER NOT NULL,        -- 1 if the request named it (then the token request must too)
    scopes                TEXT NOT NULL,
    state                 TEXT,
    code_challenge        TEXT,
    created_at            INTEGER NOT NULL,
    expires_at            INTEGER NOT NULL,
    decided_at            INTEGER                -- set once, guarding against a second decision
);
CREATE INDEX authorization_requests_expiry ON authorization_requests(expires_at);

CREATE TABLE authorization_codes (
    code_hash      TEXT PRIMARY KEY,           -- SHA-256 of the code
    grant_id       TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
    redirect_uri   TEXT NOT NULL,              -- the authorization request's redirect_uri, '' if it named none
    code_challenge TEXT,                       -- PKCE S256 challenge
    scopes         TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER                      -- single use: a second use revokes the grant
);
CREATE INDEX authorization_codes_grant ON authorization_codes(grant_id);
CREATE INDEX authorization_codes_expiry ON authorization_codes(expires_at);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,               -- SHA-256 of the refresh token
    grant_id   TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    rotated_at INTEGER,                        -- presenting a rotated token again revokes the grant
    revoked_at INTEGER
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens(grant_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens(expires_at);

CREATE TABLE access_tokens (
    token_hash         TEXT PRIMARY KEY,       -- SHA-256 of the access token
    grant_id           TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
    refresh_token_hash TEXT,                   -- the refresh token issued beside it, revoked with it
    scopes             TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    revoked_at         INTEGER
);
CREATE INDEX access_tokens_grant ON access_tokens(grant_id);
CREATE INDEX access_tokens_refresh ON access_tokens(refresh_token_hash);
CREATE INDEX access_tokens_expiry ON access_tokens(expires_at);
