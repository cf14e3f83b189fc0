-- One row that /readyz rewrites to prove the database accepts writes (a full disk or a
-- read-only database still answers reads).
CREATE TABLE readiness (
    id BIGINT PRIMARY KEY,
    checked_at BIGINT NOT NULL
);
