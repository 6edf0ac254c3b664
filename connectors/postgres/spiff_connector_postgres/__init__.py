"""First-party PostgreSQL connector for spiff-arena: ``pg/Query``, ``pg/Execute`` and ``pg/Transaction``.

The proxy loads :data:`connector` through the ``connector_proxy.connectors`` entry point and enters
its lifespan, which owns one connection pool per named connection.
"""

from spiff_connector_postgres.commands import COMMANDS
from spiff_connector_postgres.pools import lifespan
from spiff_connector_sdk import Connector

connector = Connector(
    "pg",
    description="PostgreSQL: parameterized queries, statements and transactions over named, pooled connections",
    lifespan=lifespan,
)
for _name, _func in COMMANDS.items():
    connector.command(_name)(_func)

__all__ = ["connector"]
