"""citygate edge_agent."""
