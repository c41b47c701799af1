DROP TABLE rating_rollups;
DROP TABLE clock_worked;
DROP TABLE clock_rollups;
