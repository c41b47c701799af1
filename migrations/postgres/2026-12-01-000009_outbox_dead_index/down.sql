DROP INDEX notifications_dead;
