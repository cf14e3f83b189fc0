-- Authorization codes as access and refresh tokens (0008): one B-tree ordered by the code's
-- token key (issue time, then SHA-256; the column keeps its name), no foreign key to grants and
-- no grant index. Every lookup joins the code to its grant, so a code whose grant was revoked or
-- deleted is dead at once; the janitor removes its row when it expires. Codes issued before keep
-- their bare-hash key and are found under it.

CREATE TABLE authorization_codes_by_key (
    code_hash      TEXT PRIMARY KEY,           -- token key: issue time, then SHA-256 of the code
    grant_id       TEXT NOT NULL,              -- grants(id); the code is dead once that row is gone
    redirect_uri   TEXT NOT NULL,              -- the authorization request's redirect_uri, '' if it named none
    code_challenge TEXT,                       -- PKCE S256 challenge
    scopes         TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER                      -- single use: a second use revokes the grant
) WITHOUT ROWID;
INSERT INTO authorization_codes_by_key (code_hash, grant_id, redirect_uri, code_challenge, scopes, created_at, expires_at, used_at)
    SELECT code_hash, grant_id, redirect_uri, code_challenge, scopes, created_at, expires_at, used_at FROM authorization_codes;
DROP TABLE authorization_codes;
ALTER TABLE authorization_codes_by_key RENAME TO authorization_codes;
CREATE INDEX authorization_codes_expiry ON authorization_codes(expires_at);
