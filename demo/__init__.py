"""The demo shop of ``make dev``: catalogue, accounts, agents, merchants and sales.

Seeded through the shop's real services by ``flask --app wsgi seed-demo`` (see ``cli.py``).
Nothing under ``app/`` imports this package; it imports ``app`` and ``jobs``.
"""
