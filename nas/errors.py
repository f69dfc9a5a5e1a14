"""The one exception type for mistakes in what a user asked for.

The CLI prints a `UserError` as one line and exits with code 2; anything else is a bug and
keeps its traceback. Messages name the field, the value and what is allowed.
"""


class UserError(Exception):
    """Bad input: a missing file, malformed JSON, an unknown choice, a value out of range."""
