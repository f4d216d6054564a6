"""The one base class for bad input: its message is complete (file, line, fix), so no traceback is shown."""


class EvalsuiteError(Exception):
    """A user-facing error: the message names what is wrong, where, and how to fix it."""
