"""Street lighting: TALQ-style programs, calendars and overrides, run on the gateway."""
