"""Shared test support: real servers on 127.0.0.1, the protocol document, fixture packages."""
