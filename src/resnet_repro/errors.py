"""User-facing errors: the command line prints their message alone (no traceback) and exits non-zero."""


class UserError(Exception):
    """Bad input from the user: a config value, a data folder, a path. The message says what to do."""


class ConfigError(UserError):
    """A configuration value that makes no sense; the message names the key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class DataError(UserError):
    """Missing, corrupt or malformed data; the message names the place and how to fix it."""
