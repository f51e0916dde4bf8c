"""The control-centre page: the communes on a schematic map, gateways online, open alarms,
faulty lamps, energy today against the same day last week, drill-down to a commune and a
cabinet, kept live over SSE. Every asset is served by the collector itself."""
