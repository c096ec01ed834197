"""The ``cnas`` command line: a thin layer over the public API."""
