"""The one exception type users see.

Every anticipated failure (bad parameter, malformed file, missing data set, dead worker)
is raised as :class:`CnasError` with a message that says what is wrong and what to do.
The CLI prints it as a single line and exits with code 2; the Python API lets it
propagate like any other ``ValueError``.
"""


class CnasError(ValueError):
    """A user-facing error: one line, names the problem and the fix."""


#: The largest value a Parquet table (int64) can hold: seeds, ids and counts stay below it.
INT64_MAX = 2**63 - 1


def check_integer(value, what: str, *, low: int = 0, high: int = INT64_MAX) -> int:
    """``value`` as an ``int`` if it is a whole number in ``low..high``; else a one-line error.

    The one range check for numbers that end up in tables, files or sockets (seeds,
    ids, counts, ports): ``1.5``, ``True``, ``-1`` or ``2**70`` are refused by name
    instead of being truncated or overflowing later.
    """
    import operator

    try:
        number = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        number = None
    if number is None or not low <= number <= high:
        raise CnasError(f"{what} must be an integer in {low}..{high}, got {value!r}")
    return number
