-- Issue 18: a status filter reads its requests in the list's order (newest id first), so the
-- page and the capped count stop early instead of sorting every request in the status (a
-- temporary B-tree over 277,000 delivered requests at 1,000,000). Replaces requests_status,
-- whose every use this index serves.
CREATE INDEX requests_status_id ON requests (status, id);
DROP INDEX requests_status;
