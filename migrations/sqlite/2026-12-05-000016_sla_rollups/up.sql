-- Rollups of the supervisors' statistics (docs/sla.md, "How the statistics are computed"):
-- per Shanghai calendar day (the day of `stopped_at + 8 hours`; China keeps no summer time),
-- unit, matter and clock kind, the figures of the clocks that stopped that day; the handling
-- times as a histogram (exact nearest-rank percentiles merge from it); and the ratings per
-- day, unit, matter and level. A stopped clock never changes again, and a rating is never
-- changed, so `db::clocks` (where a clock stops) and `db::ratings` (where a rating is given)
-- add each one once, in the same transaction. Days are `YYYY-MM-DD` text on both backends.
CREATE TABLE clock_rollups (
    day TEXT NOT NULL,
    unit TEXT NOT NULL,
    matter TEXT NOT NULL,
    kind TEXT NOT NULL,
    counted BIGINT NOT NULL,
    met BIGINT NOT NULL,
    breached BIGINT NOT NULL,
    cancelled BIGINT NOT NULL,
    lost_minutes BIGINT NOT NULL,
    PRIMARY KEY (day, unit, matter, kind)
);
CREATE TABLE clock_worked (
    day TEXT NOT NULL,
    unit TEXT NOT NULL,
    matter TEXT NOT NULL,
    kind TEXT NOT NULL,
    worked_minutes BIGINT NOT NULL,
    clocks BIGINT NOT NULL,
    PRIMARY KEY (day, unit, matter, kind, worked_minutes)
);
CREATE TABLE rating_rollups (
    day TEXT NOT NULL,
    unit TEXT NOT NULL,
    matter TEXT NOT NULL,
    level INTEGER NOT NULL,
    ratings BIGINT NOT NULL,
    PRIMARY KEY (day, unit, matter, level)
);
-- backfill: everything below also rebuilds the rollups of a database filled behind the
-- server's back (`db::rollups::rebuild`, the benchmark's seeding), after emptying them.
INSERT INTO clock_rollups (day, unit, matter, kind, counted, met, breached, cancelled, lost_minutes)
SELECT date(stopped_at, '+8 hours'), unit, matter, kind,
       CAST(COUNT(*) AS BIGINT),
       CAST(SUM(CASE WHEN breached_at IS NULL AND state = 'met' THEN 1 ELSE 0 END) AS BIGINT),
       CAST(SUM(CASE WHEN breached_at IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT),
       CAST(SUM(CASE WHEN breached_at IS NULL AND state <> 'met' THEN 1 ELSE 0 END) AS BIGINT),
       CAST(SUM(lost_minutes) AS BIGINT)
FROM clocks
WHERE stopped_at IS NOT NULL
GROUP BY date(stopped_at, '+8 hours'), unit, matter, kind;
INSERT INTO clock_worked (day, unit, matter, kind, worked_minutes, clocks)
SELECT date(stopped_at, '+8 hours'), unit, matter, kind, worked_minutes, CAST(COUNT(*) AS BIGINT)
FROM clocks
WHERE stopped_at IS NOT NULL AND worked_minutes IS NOT NULL
GROUP BY date(stopped_at, '+8 hours'), unit, matter, kind, worked_minutes;
INSERT INTO rating_rollups (day, unit, matter, level, ratings)
SELECT date(created_at, '+8 hours'), unit, matter, level, CAST(COUNT(*) AS BIGINT)
FROM ratings
GROUP BY date(created_at, '+8 hours'), unit, matter, level;
