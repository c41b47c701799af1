DELETE FROM clocks WHERE kind IN ('rectification_contact', 'rectification');
ALTER TABLE clocks DROP CONSTRAINT clocks_kind_check;
ALTER TABLE clocks ADD CONSTRAINT clocks_kind_check CHECK (kind IN ('window_intake',
    'supplement_notice', 'promised', 'statutory', 'delivery'));
DROP TABLE rectifications;
DROP TABLE ratings;
DROP TABLE notifications;
