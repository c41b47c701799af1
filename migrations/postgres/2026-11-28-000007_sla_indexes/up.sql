-- Indexes for the supervisors' breach and at-risk queries at a million requests
-- (docs/sla.md, docs/performance.md): breaches filtered by matter, by clock kind, or still open
-- without a unit filter, and a unit supervisor's at-risk list over a long window.
CREATE INDEX clocks_matter_breached ON clocks (matter, breached_at) WHERE breached_at IS NOT NULL;
CREATE INDEX clocks_kind_breached ON clocks (kind, breached_at) WHERE breached_at IS NOT NULL;
CREATE INDEX clocks_open_breached ON clocks (breached_at)
    WHERE breached_at IS NOT NULL AND stopped_at IS NULL;
CREATE INDEX clocks_unit_open_due ON clocks (unit, due_at)
    WHERE stopped_at IS NULL AND state = 'running';
