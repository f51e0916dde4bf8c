"""Traffic counts from the junctions ' detectors: store, rollups, read routes, open data (issue 15)."""
