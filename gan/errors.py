"""Exit codes of the command-line tools, and turning an error the user can fix into one sentence.

A mistake the user can fix ends in one message on stderr (what happened, what to do) and one of
these codes, never in a traceback. Anything else is a bug: it keeps its traceback (exit code 1).
The table is in the README ("When something goes wrong"); keep the two in sync.
"""
import sys
from typing import Optional, Sequence, Tuple, Type

EXIT_USAGE = 2            # Bad flag, config file or setting; unknown attribute/value; bad input.
EXIT_WORKDIR_LOCKED = 3   # Another training run holds the workdir.
EXIT_CONFIG_CHANGED = 4   # The workdir's checkpoints come from another model/data config.
EXIT_DIVERGED = 5         # NaN/Inf in a loss or the parameters; the last good checkpoint is kept.
EXIT_CHECKPOINT = 6       # Damaged checkpoints: all of them, or the one --checkpoint names.
EXIT_STORAGE = 7          # Checkpoints unreadable for now (transient storage error): retry later.
EXIT_OUTPUT = 8           # An output cannot be written where it was asked.

ExitTable = Sequence[Tuple[Type[BaseException], int]]


class ConfigError(ValueError):
  """A configuration that cannot run: a missing or broken config file, or a rejected setting."""


class OutputError(ValueError):
  """An output path that cannot be written (a folder where a file is asked, a read-only place)."""


def exit_code(error: BaseException, table: ExitTable) -> Optional[int]:
  """The exit code of the first (type, code) entry `error` is an instance of; None for a bug."""
  for kind, code in table:
    if isinstance(error, kind):
      return code
  return None


def kinds(table: ExitTable) -> Tuple[Type[BaseException], ...]:
  """The error types of a table, for an `except` clause."""
  return tuple(kind for kind, _ in table)


def report(prog: str, error: BaseException, table: ExitTable) -> int:
  """Prints `prog: error: <message>` on stderr; returns the error's exit code."""
  print(f'{prog}: error: {error}', file=sys.stderr, flush=True)
  return exit_code(error, table) or 1
