-- Issue 18, at 1,000,000 requests.
-- A status filter reads its requests in the list's order (newest id first), so the page and
-- the capped count stop early instead of sorting every request in the status (a temporary
-- B-tree over 277,000 delivered requests). Replaces requests_status, whose every use this
-- index serves.
CREATE INDEX requests_status_id ON requests (status, id);
DROP INDEX requests_status;
-- The clerk's queue picks its 200 oldest open tasks from the index alone (created_at and id
-- in it), then reads only those rows; before, every open task of the unit (2,365 for market)
-- was read from the table and joined to its request before the sort. Replaces
-- tasks_unit_status, whose every use this index serves.
CREATE INDEX tasks_unit_status_created ON tasks (unit, status, created_at, id);
DROP INDEX tasks_unit_status;
