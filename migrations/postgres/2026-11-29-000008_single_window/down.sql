DELETE FROM clocks WHERE kind IN ('opinion', 'material', 'on_the_spot', 'immediate');
ALTER TABLE clocks DROP COLUMN material_id;
ALTER TABLE clocks DROP CONSTRAINT clocks_kind_check;
ALTER TABLE clocks ADD CONSTRAINT clocks_kind_check CHECK (kind IN ('window_intake',
    'supplement_notice', 'promised', 'statutory', 'delivery', 'rectification_contact',
    'rectification'));
ALTER TABLE rectifications DROP COLUMN no_contact_reason;
ALTER TABLE materials DROP COLUMN received_at_window;
ALTER TABLE materials DROP COLUMN supplied_by;
ALTER TABLE materials DROP COLUMN supplied_at;
ALTER TABLE requests DROP COLUMN delivered_at;
ALTER TABLE requests DROP COLUMN certificate;
ALTER TABLE requests DROP COLUMN result_kind;
ALTER TABLE tasks DROP COLUMN opinion_at;
ALTER TABLE tasks DROP COLUMN opinion_by;
ALTER TABLE tasks DROP COLUMN opinion_note;
ALTER TABLE tasks DROP COLUMN opinion;
