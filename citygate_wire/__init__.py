"""The formats both halves share (upload batches; later MQTT messages), defined once and versioned.

Imported by `edge_agent` and by `collector`; imports neither.
"""
