-- The foreign key from access and refresh tokens to grants and the index behind its cascade go.
-- They cost every token issue a random B-tree insert per table and a row lock on the grant, and
-- nothing needs them: every lookup joins the token to its grant, so a token whose grant was
-- deleted (with its app, user or workspace) is dead at once, exactly as a revoked one. Its row is
-- removed by the janitor when it expires. Tokens are looked up only by their key, which begins
-- with the issue time, so new ones append to the primary key index.
ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_grant_id_fkey;
DROP INDEX refresh_tokens_grant;
ALTER TABLE access_tokens DROP CONSTRAINT access_tokens_grant_id_fkey;
DROP INDEX access_tokens_grant;
