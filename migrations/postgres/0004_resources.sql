-- The resource API: caches and their rules, databases, developer API keys, and the responses
-- remembered for Idempotency-Key retries. Everything belongs to a workspace.

CREATE TABLE caches (
    id                TEXT PRIMARY KEY,
    workspace_id      TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    description       TEXT NOT NULL,
    database_type     TEXT NOT NULL CHECK (database_type IN ('postgres', 'mysql', 'mariadb', 'mssql')),
    origin_host       TEXT NOT NULL,
    origin_port       BIGINT NOT NULL,
    caching_enabled   BIGINT NOT NULL,
    default_behaviour TEXT NOT NULL CHECK (default_behaviour IN ('auto_cached', 'uncached')),
    purged_at         BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (workspace_id, name)
);
CREATE INDEX caches_page ON caches(workspace_id, created_at, id);

CREATE TABLE cache_rules (
    id          TEXT PRIMARY KEY,
    cache_id    TEXT NOT NULL REFERENCES caches(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    rule_type   TEXT NOT NULL CHECK (rule_type IN ('table', 'template', 'query')),
    match_text  TEXT NOT NULL,
    ttl_seconds BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (cache_id, name)
);
CREATE INDEX cache_rules_page ON cache_rules(cache_id, created_at, id);

CREATE TABLE databases (
    id             TEXT PRIMARY KEY,
    workspace_id   TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    region         TEXT NOT NULL,
    state          TEXT NOT NULL,          -- pending, provisioning, active, deleting, deleted, failed
    endpoint       TEXT,                   -- set by the data plane, never invented
    port           BIGINT,
    password       TEXT NOT NULL,          -- the server needs it in clear to configure Redis; see README
    tls            BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    UNIQUE (workspace_id, name)
);
CREATE INDEX databases_page ON databases(workspace_id, created_at, id);

-- Developer API keys: minted with an access token (then bound to its grant and dying with it)
-- or created in the console by a workspace owner or admin (then grant_id is NULL).
CREATE TABLE api_keys (
    id                 TEXT PRIMARY KEY,
    key_hash           TEXT NOT NULL UNIQUE,   -- SHA-256 of the tes_ak_ key
    workspace_id       TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    grant_id           TEXT REFERENCES grants(id) ON DELETE CASCADE,
    created_by_user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    scopes             TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    last_used_at       BIGINT,
    revoked_at         BIGINT
);
CREATE INDEX api_keys_page ON api_keys(workspace_id, created_at, id);
CREATE INDEX api_keys_grant ON api_keys(grant_id);

-- The first response to a POST with an Idempotency-Key, replayed for retries with the same body.
CREATE TABLE idempotency_keys (
    principal    TEXT NOT NULL,              -- the credential's grant or key id
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,              -- SHA-256 of method, path and body
    status       BIGINT NOT NULL,
    body         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (principal, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys(created_at);
