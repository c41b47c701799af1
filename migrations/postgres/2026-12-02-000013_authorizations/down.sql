DROP TABLE assisted_acts;
DROP TABLE authorizations;
