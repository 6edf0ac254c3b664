"""A synchronous community command doing no I/O: what a call costs the proxy itself."""

from typing import Any


class Echo:
    """Answer ``message`` as the body of a v2 envelope."""

    def __init__(self, message: str):
        self.message = message

    def execute(self, config: Any, task_data: Any) -> dict[str, Any]:
        return {
            "command_response": {"body": {"message": self.message}, "mimetype": "application/json"},
            "command_response_version": 2,
            "error": None,
            "spiff__logs": [],
        }
