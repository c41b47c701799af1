DROP TABLE appointment_weeks;
DROP TABLE appointment_slots;
DROP TABLE appointments;
