"""On-street parking at the collector: the space inventory, the occupancy projection of the
sensors' samples, aggregates per street and zone, overstays, open data and the operator's panel."""
