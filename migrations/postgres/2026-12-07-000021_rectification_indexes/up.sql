-- The rectification list pages newest first (`ORDER BY created_at DESC, id DESC`), for the
-- district, a unit, or in one status: an index in that order for each, so a page reads its
-- rows in order and stops, instead of sorting every case of the scope.
CREATE INDEX rectifications_created ON rectifications (created_at, id);
CREATE INDEX rectifications_unit_created ON rectifications (unit, created_at, id);
CREATE INDEX rectifications_status_created ON rectifications (status, created_at, id);
