"""Operators' alarms: one per cause (a cabinet's lost bus is one alarm of N devices), cleared by the
matching restore, acknowledged, assigned, commented and cleared by operators, every action audited.
Folded from the MQTT alarm log and the uploaded events (collector.alarms.model says the rules)."""
