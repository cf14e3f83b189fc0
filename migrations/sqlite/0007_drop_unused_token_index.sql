-- No query looks access tokens up by the refresh token issued beside them (revoking a refresh
-- token revokes its whole grant), and every token issue paid for this index with one more
-- random B-tree insert. The column stays, so the index can come back with such a query.
DROP INDEX access_tokens_refresh;
