DROP INDEX rectifications_status_created;
DROP INDEX rectifications_unit_created;
DROP INDEX rectifications_created;
