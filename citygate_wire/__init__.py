"""The formats both halves share (upload batches, MQTT control-plane messages), defined once and versioned.

Imported by `edge_agent` and by `collector`; imports neither.
"""
