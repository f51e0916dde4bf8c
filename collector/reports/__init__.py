"""Residents' reports: Open311 GeoReport v2 under /open311/v2/, and the operators' side of them."""
