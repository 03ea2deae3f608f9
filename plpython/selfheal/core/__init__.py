"""Pure Python, no database: error parsing, statement scanning, naming, the planner, policy
and authority, schema drift, the log reader and the catalog query's text. pytest imports it
directly, and the server package imports it as it is."""
