-- Single-window authority (issue: lead unit speaks, co-units give opinions), 容缺 materials
-- followed to the end, the delivered result on the request, and the clocks that follow the
-- visit: opinion, material, 立等可取 (on_the_spot) and 即办件 (immediate) clocks.

-- Opinion tasks (co-units of a matter): the opinion, its note, who gave it and when.
ALTER TABLE tasks ADD COLUMN opinion TEXT CHECK (opinion IN ('agree', 'agree_with_conditions', 'disagree'));
ALTER TABLE tasks ADD COLUMN opinion_note TEXT;
ALTER TABLE tasks ADD COLUMN opinion_by TEXT;
ALTER TABLE tasks ADD COLUMN opinion_at TIMESTAMP;

-- The delivered result, on the request itself (was only in the deliver event's payload).
ALTER TABLE requests ADD COLUMN result_kind TEXT CHECK (result_kind IN ('approval', 'denial'));
ALTER TABLE requests ADD COLUMN certificate TEXT;
ALTER TABLE requests ADD COLUMN delivered_at TIMESTAMP;

-- 容缺: a deferred material supplied later, online or at the window.
ALTER TABLE materials ADD COLUMN supplied_at TIMESTAMP;
ALTER TABLE materials ADD COLUMN supplied_by TEXT;
ALTER TABLE materials ADD COLUMN received_at_window BOOLEAN NOT NULL DEFAULT FALSE;

-- Rectification cases closed without a contact must say why.
ALTER TABLE rectifications ADD COLUMN no_contact_reason TEXT;

-- New clock kinds, and the material a material clock watches.
ALTER TABLE clocks DROP CONSTRAINT clocks_kind_check;
ALTER TABLE clocks ADD CONSTRAINT clocks_kind_check CHECK (kind IN ('window_intake', 'supplement_notice', 'promised',
        'statutory', 'delivery', 'rectification_contact', 'rectification', 'opinion', 'material',
        'on_the_spot', 'immediate'));
ALTER TABLE clocks ADD COLUMN material_id TEXT REFERENCES materials (id);
