"""Device code: pure codecs (bytes in, typed values or a precise error out) and thin async clients.

`drivers` never imports `edge_agent` or `collector`.
"""
