"""citygate collector."""
