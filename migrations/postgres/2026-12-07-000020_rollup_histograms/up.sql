-- Handling times as histograms inside the rollup rows, and rollups per month (docs/sla.md,
-- "How the statistics are computed"). A day's row of `clock_rollups` now carries its handling
-- times as text (`minutes:clocks` pairs, ascending, space-separated; minutes exact below 64,
-- else rounded down to six significant binary digits: `domain::handling_time`), replacing the
-- row per distinct minute of `clock_worked` (975,000 rows for a year of 1,000,000 requests).
-- `clock_rollup_months` and `rating_rollup_months` hold the same per Shanghai calendar month
-- (`YYYY-MM`), so a year's statistics read about 12 rows per group instead of 365. All are
-- kept in the transactions that stop a clock or store a rating (`db::rollups`).
ALTER TABLE clock_rollups ADD COLUMN worked TEXT NOT NULL DEFAULT '';
DROP TABLE clock_worked;
CREATE TABLE clock_rollup_months (
    month TEXT NOT NULL,
    unit TEXT NOT NULL,
    matter TEXT NOT NULL,
    kind TEXT NOT NULL,
    counted BIGINT NOT NULL,
    met BIGINT NOT NULL,
    breached BIGINT NOT NULL,
    cancelled BIGINT NOT NULL,
    lost_minutes BIGINT NOT NULL,
    worked TEXT NOT NULL,
    PRIMARY KEY (month, unit, matter, kind)
);
CREATE TABLE rating_rollup_months (
    month TEXT NOT NULL,
    unit TEXT NOT NULL,
    matter TEXT NOT NULL,
    level INTEGER NOT NULL,
    ratings BIGINT NOT NULL,
    PRIMARY KEY (month, unit, matter, level)
);
-- The parts of a day at a period's ends are read from the clocks stopped then: the index now
-- holds every column the statistics read of them, so the read never visits the table (an
-- SQLite covering index; a PostgreSQL index-only scan where the pages are all-visible).
DROP INDEX clocks_stopped;
CREATE INDEX clocks_stopped ON clocks (stopped_at)
    INCLUDE (kind, unit, matter, state, breached_at, worked_minutes, lost_minutes)
    WHERE stopped_at IS NOT NULL;
DELETE FROM clock_rollups;
DELETE FROM rating_rollups;
-- backfill: everything below also rebuilds the rollups of a database filled behind the
-- server's back (`db::rollups::rebuild`, the benchmark's seeding), after emptying them.
INSERT INTO clock_rollups (day, unit, matter, kind, counted, met, breached, cancelled, lost_minutes, worked)
SELECT f.period, f.unit, f.matter, f.kind, f.counted, f.met, f.breached, f.cancelled, f.lost_minutes,
       COALESCE(h.worked, '')
FROM (
    SELECT to_char(stopped_at + INTERVAL '8 hours', 'YYYY-MM-DD') AS period, unit, matter, kind,
           CAST(COUNT(*) AS BIGINT) AS counted,
           CAST(SUM(CASE WHEN breached_at IS NULL AND state = 'met' THEN 1 ELSE 0 END) AS BIGINT) AS met,
           CAST(SUM(CASE WHEN breached_at IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS breached,
           CAST(SUM(CASE WHEN breached_at IS NULL AND state <> 'met' THEN 1 ELSE 0 END) AS BIGINT) AS cancelled,
           CAST(SUM(lost_minutes) AS BIGINT) AS lost_minutes
    FROM clocks
    WHERE stopped_at IS NOT NULL
    GROUP BY to_char(stopped_at + INTERVAL '8 hours', 'YYYY-MM-DD'), unit, matter, kind
) AS f
LEFT JOIN (
    SELECT period, unit, matter, kind,
           string_agg(CAST(bucket AS TEXT) || ':' || CAST(clocks AS TEXT), ' ' ORDER BY bucket) AS worked
    FROM (
        SELECT period, unit, matter, kind, bucket, CAST(COUNT(*) AS BIGINT) AS clocks
        FROM (
            SELECT to_char(stopped_at + INTERVAL '8 hours', 'YYYY-MM-DD') AS period, unit, matter, kind,
                   CASE WHEN worked_minutes < 64 OR worked_minutes >= 2147483648 THEN worked_minutes
                        WHEN worked_minutes < 128 THEN worked_minutes / 2 * 2
                        WHEN worked_minutes < 256 THEN worked_minutes / 4 * 4
                        WHEN worked_minutes < 512 THEN worked_minutes / 8 * 8
                        WHEN worked_minutes < 1024 THEN worked_minutes / 16 * 16
                        WHEN worked_minutes < 2048 THEN worked_minutes / 32 * 32
                        WHEN worked_minutes < 4096 THEN worked_minutes / 64 * 64
                        WHEN worked_minutes < 8192 THEN worked_minutes / 128 * 128
                        WHEN worked_minutes < 16384 THEN worked_minutes / 256 * 256
                        WHEN worked_minutes < 32768 THEN worked_minutes / 512 * 512
                        WHEN worked_minutes < 65536 THEN worked_minutes / 1024 * 1024
                        WHEN worked_minutes < 131072 THEN worked_minutes / 2048 * 2048
                        WHEN worked_minutes < 262144 THEN worked_minutes / 4096 * 4096
                        WHEN worked_minutes < 524288 THEN worked_minutes / 8192 * 8192
                        WHEN worked_minutes < 1048576 THEN worked_minutes / 16384 * 16384
                        WHEN worked_minutes < 2097152 THEN worked_minutes / 32768 * 32768
                        WHEN worked_minutes < 4194304 THEN worked_minutes / 65536 * 65536
                        WHEN worked_minutes < 8388608 THEN worked_minutes / 131072 * 131072
                        WHEN worked_minutes < 16777216 THEN worked_minutes / 262144 * 262144
                        WHEN worked_minutes < 33554432 THEN worked_minutes / 524288 * 524288
                        WHEN worked_minutes < 67108864 THEN worked_minutes / 1048576 * 1048576
                        WHEN worked_minutes < 134217728 THEN worked_minutes / 2097152 * 2097152
                        WHEN worked_minutes < 268435456 THEN worked_minutes / 4194304 * 4194304
                        WHEN worked_minutes < 536870912 THEN worked_minutes / 8388608 * 8388608
                        WHEN worked_minutes < 1073741824 THEN worked_minutes / 16777216 * 16777216
                        WHEN worked_minutes < 2147483648 THEN worked_minutes / 33554432 * 33554432
                   END AS bucket
            FROM clocks
            WHERE stopped_at IS NOT NULL AND worked_minutes IS NOT NULL
        ) AS b
        GROUP BY period, unit, matter, kind, bucket
    ) AS c
    GROUP BY period, unit, matter, kind
) AS h ON h.period = f.period AND h.unit = f.unit AND h.matter = f.matter AND h.kind = f.kind;
INSERT INTO clock_rollup_months (month, unit, matter, kind, counted, met, breached, cancelled, lost_minutes, worked)
SELECT f.period, f.unit, f.matter, f.kind, f.counted, f.met, f.breached, f.cancelled, f.lost_minutes,
       COALESCE(h.worked, '')
FROM (
    SELECT to_char(stopped_at + INTERVAL '8 hours', 'YYYY-MM') AS period, unit, matter, kind,
           CAST(COUNT(*) AS BIGINT) AS counted,
           CAST(SUM(CASE WHEN breached_at IS NULL AND state = 'met' THEN 1 ELSE 0 END) AS BIGINT) AS met,
           CAST(SUM(CASE WHEN breached_at IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS breached,
           CAST(SUM(CASE WHEN breached_at IS NULL AND state <> 'met' THEN 1 ELSE 0 END) AS BIGINT) AS cancelled,
           CAST(SUM(lost_minutes) AS BIGINT) AS lost_minutes
    FROM clocks
    WHERE stopped_at IS NOT NULL
    GROUP BY to_char(stopped_at + INTERVAL '8 hours', 'YYYY-MM'), unit, matter, kind
) AS f
LEFT JOIN (
    SELECT period, unit, matter, kind,
           string_agg(CAST(bucket AS TEXT) || ':' || CAST(clocks AS TEXT), ' ' ORDER BY bucket) AS worked
    FROM (
        SELECT period, unit, matter, kind, bucket, CAST(COUNT(*) AS BIGINT) AS clocks
        FROM (
            SELECT to_char(stopped_at + INTERVAL '8 hours', 'YYYY-MM') AS period, unit, matter, kind,
                   CASE WHEN worked_minutes < 64 OR worked_minutes >= 2147483648 THEN worked_minutes
                        WHEN worked_minutes < 128 THEN worked_minutes / 2 * 2
                        WHEN worked_minutes < 256 THEN worked_minutes / 4 * 4
                        WHEN worked_minutes < 512 THEN worked_minutes / 8 * 8
                        WHEN worked_minutes < 1024 THEN worked_minutes / 16 * 16
                        WHEN worked_minutes < 2048 THEN worked_minutes / 32 * 32
                        WHEN worked_minutes < 4096 THEN worked_minutes / 64 * 64
                        WHEN worked_minutes < 8192 THEN worked_minutes / 128 * 128
                        WHEN worked_minutes < 16384 THEN worked_minutes / 256 * 256
                        WHEN worked_minutes < 32768 THEN worked_minutes / 512 * 512
                        WHEN worked_minutes < 65536 THEN worked_minutes / 1024 * 1024
                        WHEN worked_minutes < 131072 THEN worked_minutes / 2048 * 2048
                        WHEN worked_minutes < 262144 THEN worked_minutes / 4096 * 4096
                        WHEN worked_minutes < 524288 THEN worked_minutes / 8192 * 8192
                        WHEN worked_minutes < 1048576 THEN worked_minutes / 16384 * 16384
                        WHEN worked_minutes < 2097152 THEN worked_minutes / 32768 * 32768
                        WHEN worked_minutes < 4194304 THEN worked_minutes / 65536 * 65536
                        WHEN worked_minutes < 8388608 THEN worked_minutes / 131072 * 131072
                        WHEN worked_minutes < 16777216 THEN worked_minutes / 262144 * 262144
                        WHEN worked_minutes < 33554432 THEN worked_minutes / 524288 * 524288
                        WHEN worked_minutes < 67108864 THEN worked_minutes / 1048576 * 1048576
                        WHEN worked_minutes < 134217728 THEN worked_minutes / 2097152 * 2097152
                        WHEN worked_minutes < 268435456 THEN worked_minutes / 4194304 * 4194304
                        WHEN worked_minutes < 536870912 THEN worked_minutes / 8388608 * 8388608
                        WHEN worked_minutes < 1073741824 THEN worked_minutes / 16777216 * 16777216
                        WHEN worked_minutes < 2147483648 THEN worked_minutes / 33554432 * 33554432
                   END AS bucket
            FROM clocks
            WHERE stopped_at IS NOT NULL AND worked_minutes IS NOT NULL
        ) AS b
        GROUP BY period, unit, matter, kind, bucket
    ) AS c
    GROUP BY period, unit, matter, kind
) AS h ON h.period = f.period AND h.unit = f.unit AND h.matter = f.matter AND h.kind = f.kind;
INSERT INTO rating_rollups (day, unit, matter, level, ratings)
SELECT to_char(created_at + INTERVAL '8 hours', 'YYYY-MM-DD'), unit, matter, level, CAST(COUNT(*) AS BIGINT)
FROM ratings
GROUP BY to_char(created_at + INTERVAL '8 hours', 'YYYY-MM-DD'), unit, matter, level;
INSERT INTO rating_rollup_months (month, unit, matter, level, ratings)
SELECT to_char(created_at + INTERVAL '8 hours', 'YYYY-MM'), unit, matter, level, CAST(COUNT(*) AS BIGINT)
FROM ratings
GROUP BY to_char(created_at + INTERVAL '8 hours', 'YYYY-MM'), unit, matter, level;
