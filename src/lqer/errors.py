"""lqer's own error and warning, and how a message names a parameter.

Library messages name the Python parameter in backticks (`out`, `skip_bad`), so that a notebook
user reads the name they passed; the command line shows the same message with its flags
(--out, --skip-bad) through `as_flags`.
"""

import re

PARAMETER = re.compile(r"`([a-z][a-z0-9_]*)`")
# Where a flag is not spelled as its parameter.
FLAGS = {"fmt": "--format", "out_dir": "--out", "regroup_to": "--regroup"}


class LqerError(Exception):
    """A problem with the user's input: the CLI prints it as one line, without a traceback."""


class LqerWarning(UserWarning):
    """Something the user should know that does not stop the run; the CLI prints one line."""


def flag(parameter: str) -> str:
    """The command line's spelling of a library parameter."""
    return FLAGS.get(parameter, "--" + parameter.replace("_", "-"))


def as_flags(message: str) -> str:
    """A library message as the command line says it: each `parameter` becomes its flag."""
    return PARAMETER.sub(lambda m: flag(m.group(1)), message)
