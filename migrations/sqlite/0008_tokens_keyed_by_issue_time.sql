-- Access and refresh tokens are looked up only by their key, which begins with the issue time,
-- so each table becomes one B-tree ordered by that key (WITHOUT ROWID): a token issue appends to
-- it instead of inserting into a rowid table and a separate key index.
--
-- The foreign key to grants and the index behind its cascade go. They cost every token issue a
-- random B-tree insert per table and a parent lookup, and nothing needs them: every lookup joins
-- the token to its grant, so a token whose grant was deleted (with its app, user or workspace)
-- is dead at once, exactly as a revoked one. Its row is removed by the janitor when it expires.

CREATE TABLE refresh_tokens_by_key (
    token_hash TEXT PRIMARY KEY,               -- token key: issue time, then SHA-256 of the token
    grant_id   TEXT NOT NULL,                  -- grants(id); the token is dead once that row is gone
    scopes     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    rotated_at INTEGER,                        -- presenting a rotated token again revokes the grant
    revoked_at INTEGER
) WITHOUT ROWID;
INSERT INTO refresh_tokens_by_key (token_hash, grant_id, scopes, created_at, expires_at, rotated_at, revoked_at)
    SELECT token_hash, grant_id, scopes, created_at, expires_at, rotated_at, revoked_at FROM refresh_tokens;
DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_by_key RENAME TO refresh_tokens;
CREATE INDEX refresh_tokens_expiry ON refresh_tokens(expires_at);

CREATE TABLE access_tokens_by_key (
    token_hash         TEXT PRIMARY KEY,       -- token key: issue time, then SHA-256 of the token
    grant_id           TEXT NOT NULL,          -- grants(id); the token is dead once that row is gone
    refresh_token_hash TEXT,                   -- the refresh token issued beside it
    scopes             TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    revoked_at         INTEGER
) WITHOUT ROWID;
INSERT INTO access_tokens_by_key (token_hash, grant_id, refresh_token_hash, scopes, created_at, expires_at, revoked_at)
    SELECT token_hash, grant_id, refresh_token_hash, scopes, created_at, expires_at, revoked_at FROM access_tokens;
DROP TABLE access_tokens;
ALTER TABLE access_tokens_by_key RENAME TO access_tokens;
CREATE INDEX access_tokens_expiry ON access_tokens(expires_at);
