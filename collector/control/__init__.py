"""The collector's side of the MQTT control plane: presence, alarm log, commands and their audit, broker ACLs."""
