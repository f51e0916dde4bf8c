"""The formats both halves share (upload batches, MQTT control-plane messages), defined once and versioned,
and the asyncio helpers both need (citygate_wire.aio).

Imported by `edge_agent` and by `collector`; imports neither.
"""
