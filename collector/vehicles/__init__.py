"""Service vehicles (police municipale, refuse collection): the registry, their positions, trips and waste
rounds, the streets table, and who may read what (store.py, rounds.py, routes.py, cli.py)."""
