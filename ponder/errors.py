"""Errors are types with messages a user can act on."""


class PonderError(Exception):
    """Base of every error ponder raises on purpose."""


class InvalidRequest(PonderError, ValueError):
    """A request, parameter or spec is malformed; the message says which and why."""


class ModelError(PonderError):
    """A model is missing, corrupt or cannot be loaded; the message says how to fix it."""


class BackendError(PonderError):
    """A generator backend failed while serving a request."""


class BackendUnavailable(BackendError):
    """The backend cannot be reached (server down, connection refused, repeated timeouts)."""


class ContextOverflow(BackendError):
    """A request does not fit in the model's context window or the KV cache."""
