DROP INDEX clocks_stopped;
CREATE INDEX clocks_stopped ON clocks (stopped_at) WHERE stopped_at IS NOT NULL;
DROP TABLE rating_rollup_months;
DROP TABLE clock_rollup_months;
ALTER TABLE clock_rollups DROP COLUMN worked;
CREATE TABLE clock_worked (
    day TEXT NOT NULL,
    unit TEXT NOT NULL,
    matter TEXT NOT NULL,
    kind TEXT NOT NULL,
    worked_minutes BIGINT NOT NULL,
    clocks BIGINT NOT NULL,
    PRIMARY KEY (day, unit, matter, kind, worked_minutes)
);
INSERT INTO clock_worked (day, unit, matter, kind, worked_minutes, clocks)
SELECT date(stopped_at, '+8 hours'), unit, matter, kind, worked_minutes, CAST(COUNT(*) AS BIGINT)
FROM clocks
WHERE stopped_at IS NOT NULL AND worked_minutes IS NOT NULL
GROUP BY date(stopped_at, '+8 hours'), unit, matter, kind, worked_minutes;
