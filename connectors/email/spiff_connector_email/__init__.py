"""First-party email connector for spiff-arena: ``email/SendEmail`` sends a message over SMTP.

The proxy loads :data:`connector` through the ``connector_proxy.connectors`` entry point. The
SMTP server, credentials and allowed senders come from the proxy's ``config`` mapping (keys
``EMAIL_*``, see :mod:`spiff_connector_email.settings`); each call opens its own connection.
"""

from spiff_connector_email.commands import COMMANDS
from spiff_connector_sdk import Connector

connector = Connector(
    "email",
    description="Send email over SMTP (plain text and/or HTML, attachments) from allowed senders",
)
for _name, _func in COMMANDS.items():
    connector.command(_name)(_func)

__all__ = ["connector"]
