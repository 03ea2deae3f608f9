"""selfheal: repairs schema drift in PostgreSQL.

The server imports only the core modules (errors, sqlscan, naming, planner) and the
adapter (server). Client integrations and the CLI live beside them and are never
imported inside PostgreSQL.
"""
