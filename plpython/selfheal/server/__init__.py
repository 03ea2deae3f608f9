"""Inside PostgreSQL: the adapter over plpy, and the work each entry point does with it.

Every entry point receives `plpy` from a thin SQL function (`server.entry(plpy,
server.heal_error, ...)`). A plan is applied inside a subtransaction together with its audit
row, under a per-table advisory lock and a short lock_timeout, so a repair is either wholly
there or not there at all. Nothing here imports a client library or pglast.

Modules, in the order of the flow: adapter (plpy), facts (catalog facts for the planner),
events and log (errors in), heal (errors planned and authorized), apply (plans applied and
audited), roles (acting as a table's owner or a reporting role), ddl (the event triggers'
work), compat, decisions (undo, approve, reject), backfill, schedule (watch) and removal (DROP
EXTENSION).
"""

from .adapter import entry
from .backfill import backfill
from .compat import add_alias, disable_compat, enable_compat, refresh_compat
from .ddl import ddl_dropped, ddl_end, ddl_start
from .decisions import approve, reject, undo
from .heal import heal, heal_error, record_error
from .log import configure_logging, logging_advice
from .removal import drop_extension
from .schedule import watch

__all__ = ["add_alias", "approve", "backfill", "configure_logging", "ddl_dropped", "ddl_end", "ddl_start",
           "disable_compat", "drop_extension", "enable_compat", "entry", "heal", "heal_error", "logging_advice",
           "record_error", "refresh_compat", "reject", "undo", "watch"]
