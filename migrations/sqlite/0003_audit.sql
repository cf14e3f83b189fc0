-- The audit log: who did what to apps, authorizations, API keys, memberships and workspaces.
--
-- Every row belongs to exactly one log, a user's or a workspace's. An event that concerns both
-- (a user authorized an app on a workspace) is written once to each, so deleting a workspace
-- removes the workspace's own log but leaves the entries in its members' logs. A row is written
-- in the same transaction as the change it records, and never contains a secret.

CREATE TABLE audit_events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT, -- insertion order; newest first is seq DESC
    id           TEXT NOT NULL UNIQUE,              -- opaque; the console's page cursor
    user_id      TEXT REFERENCES users(id) ON DELETE CASCADE,
    workspace_id TEXT REFERENCES workspaces(id) ON DELETE CASCADE,
    actor        TEXT NOT NULL,                     -- the acting user's email, 'operator', 'system', or an app
    action       TEXT NOT NULL,                     -- stable name, e.g. 'app.created', 'authorization.revoked'
    details      TEXT NOT NULL,                     -- what happened, in words
    created_at   INTEGER NOT NULL,
    CHECK ((user_id IS NULL) <> (workspace_id IS NULL))
);
CREATE INDEX audit_events_user ON audit_events(user_id, seq);
CREATE INDEX audit_events_workspace ON audit_events(workspace_id, seq);
