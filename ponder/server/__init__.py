"""The OpenAI-compatible server: ``ponder serve``."""

from ponder.server.app import ServeConfig, create_app

__all__ = ["ServeConfig", "create_app"]
