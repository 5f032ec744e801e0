"""User-facing errors: the command line prints their message alone (no traceback) and exits non-zero."""

import sys


class UserError(Exception):
    """Bad input from the user: a config value, a data folder, a path. The message says what to do."""


class ConfigError(UserError):
    """A configuration value that makes no sense; the message names the key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class DataError(UserError):
    """Missing, corrupt or malformed data; the message names the place and how to fix it."""


def printable_streams() -> None:
    """Let stdout and stderr print any path: a name that is not UTF-8 (from another file system) is printed
    escaped (backslashreplace) instead of failing the command that names it."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)  # a StringIO (tests, notebooks) has none, and needs none
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def one_line(error: BaseException) -> str:
    """An error's message on one line (a library's message may span several: its lines are joined by "; ")."""
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip())


def escaped(text: str) -> str:
    """`text` with each character that is not printable (a newline, a control character) as its escape: a string
    from someone else's file stays on its line and cannot start one of its own. Escaping twice changes nothing more
    (a backslash is kept as it is), so a message escaped where it is made reads the same in a report that escapes
    every line."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
