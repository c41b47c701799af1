DROP INDEX requests_channel_id;
DROP INDEX requests_code_id;
DROP INDEX tasks_matter_request;
DROP INDEX tasks_category_request;
