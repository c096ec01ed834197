"""The one exception type users see.

Every anticipated failure (bad parameter, malformed file, missing data set, dead worker)
is raised as :class:`CnasError` with a message that says what is wrong and what to do.
The CLI prints it as a single line and exits with code 2; the Python API lets it
propagate like any other ``ValueError``.
"""


class CnasError(ValueError):
    """A user-facing error: one line, names the problem and the fix."""
