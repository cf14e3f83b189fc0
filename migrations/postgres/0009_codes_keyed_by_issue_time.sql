-- Authorization codes as access and refresh tokens (0008): stored under the code's token key
-- (issue time, then SHA-256; the column keeps its name), no foreign key to grants and no grant
-- index. Every lookup joins the code to its grant, so a code whose grant was revoked or deleted is
-- dead at once; the janitor removes its row when it expires.
ALTER TABLE authorization_codes DROP CONSTRAINT authorization_codes_grant_id_fkey;
DROP INDEX authorization_codes_grant;
