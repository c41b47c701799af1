-- Rate limits shared by every instance on one database (docs/security-limits.md): one row per
-- bucket (`enterprise:<uscc>`, `official:<token subject>`, `address:<client address>`), the
-- fixed window it counts in (Unix seconds of the window's start) and the requests counted in
-- it. One upsert per request moves the row to the current window or adds one to it; rows of
-- windows long past are swept.
CREATE TABLE rate_limits (
    bucket TEXT PRIMARY KEY NOT NULL,
    window_start BIGINT NOT NULL,
    hits BIGINT NOT NULL
);
CREATE INDEX rate_limits_window_start ON rate_limits (window_start);
