"""The one error type for user mistakes: the CLI prints its message in one line and exits 1."""


class UserError(Exception):
    """A problem the user can fix (bad argument, missing file, no device): what, and how."""
