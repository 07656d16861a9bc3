class LqerError(Exception):
    """A problem with the user's input: the CLI prints it as one line, without a traceback."""


class LqerWarning(UserWarning):
    """Something the user should know that does not stop the run; the CLI prints one line."""
