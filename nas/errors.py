"""The one exception type for mistakes in what a user asked for.

The CLI prints a `UserError` as one line and exits with code 2; anything else is a bug and
keeps its traceback. Messages name the field, the value and what is allowed; `check_int` and
`check_number` are the one home of the numeric checks every config section needs.
"""

from collections.abc import Callable


class UserError(Exception):
    """Bad input: a missing file, malformed JSON, an unknown choice, a value out of range."""


def check_int(field: str, value: object, low: int, allowed: str = "") -> int:
    """`value` if it is an integer >= `low` (not a bool), else a UserError naming `field`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UserError(f"{field}: got {value!r}; allowed: {allowed or f'an integer >= {low}'}")
    return value


def check_number(field: str, value: object, ok: Callable[[float], bool], allowed: str) -> float:
    """`value` as a float if it is a number (not a bool) for which `ok` holds, else a
    UserError naming `field` and `allowed`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok(value):
        raise UserError(f"{field}: got {value!r}; allowed: {allowed}")
    return float(value)
