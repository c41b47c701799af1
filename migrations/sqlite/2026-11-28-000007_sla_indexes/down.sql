DROP INDEX clocks_unit_open_due;
DROP INDEX clocks_open_breached;
DROP INDEX clocks_kind_breached;
DROP INDEX clocks_matter_breached;
