"""Keeps a command-line tool's output to its own lines: the libraries' start-up noise and logs stay
off unless --verbosity asks for them."""
import argparse
import contextlib
import logging
import os
import sys
from typing import Iterator, List, MutableMapping, Optional, Sequence

# `python -m` modules that start quiet. gan.main keeps absl's usual logging.
TOOLS = ('gan.sample', 'gan.invert', 'gan.evaluate', 'gan.data.catalog', 'gan.studio')
# Read by TensorFlow and XLA as they load, so set before they are imported: their C++ logs show
# errors only (no oneDNN or CPU-feature notes, no "All log messages before absl::InitializeLog()",
# no tf.data cache warnings). TensorFlow 2.21 prints its oneDNN note whatever the log level; the
# tools use TensorFlow only for tf.data input, where oneDNN's math kernels play no part, so they
# turn oneDNN off instead.
QUIET_ENVIRONMENT = {'TF_CPP_MIN_LOG_LEVEL': '2', 'TF_ENABLE_ONEDNN_OPTS': '0'}
LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}
HELP = ("0 (default): only the tool's own lines, its warnings and errors; 1: also the libraries' "
        'logs (absl INFO, TensorFlow/XLA start-up messages); 2: also debug logs.')
_OWN_CODE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def add_flag(parser: argparse.ArgumentParser) -> None:
  parser.add_argument('--verbosity', type=int, default=0, choices=sorted(LEVELS), help=HELP)


def requested_verbosity(args: Sequence[str]) -> int:
  """The --verbosity of a command line: 0 when absent or not a number (the parser says so later)."""
  for i, arg in enumerate(args):
    if arg == '--':
      break
    name, eq, value = arg.partition('=')
    if len(name) > 3 and '--verbosity'.startswith(name):  # argparse takes abbreviations too.
      value = value if eq else (args[i + 1] if i + 1 < len(args) else '')
      return int(value) if value.lstrip('-').isdigit() else 0
  return 0


def tool_args(orig_argv: Sequence[str]) -> Optional[List[str]]:
  """The arguments of `python [options] -m TOOL ARGS` when TOOL is one of TOOLS, else None."""
  i = 1
  while i < len(orig_argv):
    arg = orig_argv[i]
    if arg.startswith('-m'):
      module, rest = (orig_argv[i + 1:i + 2], i + 2) if arg == '-m' else ([arg[2:]], i + 1)
      return list(orig_argv[rest:]) if module and module[0] in TOOLS else None
    if arg == '-c' or not arg.startswith('-'):  # A command or a script, not a module.
      return None
    i += 2 if arg in ('-W', '-X') else 1  # Options with a separate argument.
  return None


def quiet_libraries(environ: MutableMapping[str, str] = os.environ,
                    orig_argv: Optional[Sequence[str]] = None) -> None:
  """In a `python -m TOOL` process without --verbosity >= 1, sets QUIET_ENVIRONMENT; a variable
  the user has set keeps its value. Runs from gan/__init__.py, before anything loads TensorFlow."""
  args = tool_args(getattr(sys, 'orig_argv', []) if orig_argv is None else orig_argv)
  if args is not None and requested_verbosity(args) <= 0:
    for key, value in QUIET_ENVIRONMENT.items():
      environ.setdefault(key, value)


class _OwnWarnings(logging.Filter):
  """Errors from anyone; warnings only from productgan's own code (e.g. a checkpoint fallback)."""

  def filter(self, record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR or os.path.abspath(record.pathname).startswith(_OWN_CODE)


@contextlib.contextmanager
def logs(verbosity: int) -> Iterator[None]:
  """Python logging while a tool runs, restored afterwards (so main() may be called in-process).

  0: absl warnings from productgan's code and errors from anyone (orbax, TensorFlow and JAX warn
  about things a user of the tool cannot act on); 1: INFO logs of everyone; 2: DEBUG logs.
  """
  absl_logger = logging.getLogger('absl')  # Where absl.logging writes, for us and for orbax.
  saved = absl_logger.level, logging.root.level
  own = _OwnWarnings()
  level = LEVELS[min(max(verbosity, 0), max(LEVELS))]
  absl_logger.setLevel(level)
  if verbosity <= 0:
    absl_logger.addFilter(own)
    logging.root.setLevel(logging.ERROR)  # Loggers of the libraries (jax, tensorflow) inherit it.
  else:
    logging.root.setLevel(level)
    if not logging.root.handlers:
      logging.basicConfig()  # Python's last-resort handler would drop INFO lines.
  try:
    yield
  finally:
    absl_logger.removeFilter(own)
    absl_logger.setLevel(saved[0])
    logging.root.setLevel(saved[1])
