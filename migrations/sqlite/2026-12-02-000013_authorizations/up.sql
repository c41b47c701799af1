-- Assisted filing (帮办, docs/assisted-filing.md).
--
-- `authorizations`: an enterprise's grant to a named official (token subject) or to a unit's
-- 帮办 desk (every clerk of the unit), for one request or for a bounded period, optionally as
-- leader assistance (领导干部帮办). Never deleted: a revocation sets `revoked_at`/`revoked_by`.
CREATE TABLE authorizations (
    id TEXT PRIMARY KEY NOT NULL,
    uscc TEXT NOT NULL,
    official TEXT,
    desk_unit TEXT,
    request_id TEXT REFERENCES requests (id),
    valid_from TIMESTAMP,
    valid_until TIMESTAMP,
    leader BOOLEAN NOT NULL,
    granted_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP,
    revoked_by TEXT,
    CHECK ((official IS NULL AND desk_unit IS NOT NULL) OR (official IS NOT NULL AND desk_unit IS NULL)),
    CHECK ((request_id IS NULL AND valid_from IS NOT NULL AND valid_until IS NOT NULL)
        OR (request_id IS NOT NULL AND valid_from IS NULL AND valid_until IS NULL)),
    CHECK (NOT leader OR official IS NOT NULL)
);
CREATE INDEX authorizations_uscc ON authorizations (uscc, id);
CREATE INDEX authorizations_official ON authorizations (official, id);
CREATE INDEX authorizations_desk_unit ON authorizations (desk_unit, id);
CREATE INDEX authorizations_request ON authorizations (request_id) WHERE request_id IS NOT NULL;

-- `assisted_acts`: each enterprise step an official took for an enterprise — an intake
-- (walk-in, with the identity check; or under a grant), a supplement, a withdrawal — with
-- the grant it was taken under. Written in the step's own transaction; the statistics of
-- 领导干部帮办 count these rows.
CREATE TABLE assisted_acts (
    id TEXT PRIMARY KEY NOT NULL,
    request_id TEXT NOT NULL REFERENCES requests (id),
    uscc TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('intake', 'supplement', 'withdraw')),
    official TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('clerk', 'supervisor')),
    unit TEXT,
    authorization_id TEXT REFERENCES authorizations (id),
    leader BOOLEAN NOT NULL,
    identity_method TEXT CHECK (identity_method IN ('id_card', 'e_license', 'face')),
    verified_name TEXT,
    at TIMESTAMP NOT NULL,
    CHECK ((authorization_id IS NULL) = (identity_method IS NOT NULL))
);
CREATE INDEX assisted_acts_request ON assisted_acts (request_id, id);
CREATE INDEX assisted_acts_authorization ON assisted_acts (authorization_id, id);
CREATE INDEX assisted_acts_unit_at ON assisted_acts (unit, at);
