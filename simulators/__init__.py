"""citygate simulators."""
