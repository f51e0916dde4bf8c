"""LoRaWAN sensors reached through a network server's integration (ChirpStack v4 over MQTT)."""
