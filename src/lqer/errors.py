class LqerError(Exception):
    """A problem with the user's input: the CLI prints it as one line, without a traceback."""
