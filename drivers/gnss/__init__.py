"""GNSS on a vehicle gateway: NMEA 0183 codec (`nmea`), fixes judged and thinned (`track`), trips (`trips`),
GNSS time as a clock source (`clock`) and the serial bus shell (`bus`). See README.md."""
