DROP TABLE service_instances;
