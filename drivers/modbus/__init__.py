"""Modbus RTU/TCP lamp-controller driver: register maps as data, pure codecs, a thin pymodbus shell.

See README.md in this folder for the bus configuration keys and the quantities emitted.
"""
