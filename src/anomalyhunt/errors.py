"""The one exception type a user sees as a clear one-line error instead of a traceback."""


class AnomalyHuntError(Exception):
    """A problem with the user's input, config or environment, described so they can act on it."""
