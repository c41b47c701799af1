-- The dead-letter count of /metrics (mashangban_outbox_dead), read at every scrape: without
-- it, counting the few dead mails scans every mail ever sent. (Pending ones are counted on
-- notifications_due.)
CREATE INDEX notifications_dead ON notifications (id) WHERE status = 'dead';
