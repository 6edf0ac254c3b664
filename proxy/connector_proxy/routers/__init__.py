"""FastAPI routers, one per endpoint family."""
