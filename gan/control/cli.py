"""What `python -m gan.sample` and `python -m gan.invert` share: common flags (dashed, with
--verbosity), and turning user mistakes into one clear line on stderr and an exit code."""
import argparse
import sys
from typing import Callable, List, Optional, Sequence

from gan import destinations, errors, flag_style, quiet
from gan.control import postprocess

EXIT_USAGE = errors.EXIT_USAGE  # Bad flags, unknown attribute/value, unreadable photo, missing run.

# Output flags of the tools, checked before any work: (argparse dest, flag, checker).
OUTPUTS = (
    ('out', '--out', lambda path, flag: destinations.check_file(path, flag, 'grid.png')),
    ('out_dir', '--out-dir', destinations.check_folder),
    ('gif', '--gif', lambda path, flag: destinations.check_file(path, flag, 'path.gif')),
    ('save_latent', '--save-latent',
     lambda path, flag: destinations.check_file(path, flag, 'latent.npz')),
)

class _Parser(flag_style.ArgumentParser):
  """argparse that raises instead of exiting, so main(argv) can return an exit code."""

  def error(self, message):
    raise UsageError(message)


class UsageError(ValueError):
  pass


def make_parser(prog: str, description: str) -> argparse.ArgumentParser:
  parser = _Parser(prog=prog, description=description,
                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--workdir', required=True, help='Workdir of a training run.')
  parser.add_argument('--checkpoint', default='best',
                      help='best (the best-by-FID checkpoint if the run has one, else the latest), '
                      'latest, or a step number. Default: best.')
  parser.add_argument('--attr', action='append', default=[], metavar='NAME=VALUE',
                      help='An attribute value, e.g. --attr category=handbag --attr colour=red. '
                      'Repeatable; attributes left out mean "any".')
  parser.add_argument('--seed', type=int, default=0, help='Seed of the latents (default 0).')
  parser.add_argument('--out', help='Write the result as one PNG grid here.')
  parser.add_argument('--out-dir', help='Write one PNG per image into this directory.')
  parser.add_argument('--cols', type=int, default=None, help='Columns of the --out grid.')
  parser.add_argument('--postprocess', default='',
                      help='Comma-separated Pillow post-processing, applied in order: '
                      f'{", ".join(postprocess.POSTPROCESS.names())}.')
  quiet.add_flag(parser)
  return parser


def check_outputs(args: argparse.Namespace) -> None:
  """Refuses, before the work, outputs that could not be written (errors.OutputError)."""
  for dest, flag, check in OUTPUTS:
    path = getattr(args, dest, None)
    if path:
      check(path, flag)


def exit_codes() -> errors.ExitTable:
  """User errors of the tools -> exit code (README "When something goes wrong")."""
  from gan import checkpoint as checkpoint_lib  # jax and orbax: slow imports, not for --help.
  return ((errors.OutputError, errors.EXIT_OUTPUT),
          (checkpoint_lib.CheckpointError, errors.EXIT_CHECKPOINT),
          (checkpoint_lib.CheckpointUnavailableError, errors.EXIT_STORAGE),
          (ValueError, EXIT_USAGE), (FileNotFoundError, EXIT_USAGE))


def run_main(body: Callable[[argparse.Namespace], int], parser: argparse.ArgumentParser,
             argv: Optional[Sequence[str]]) -> int:
  """Parses argv (without the program name) and runs body(args); user errors -> exit codes."""
  table = exit_codes()
  argv = list(sys.argv[1:] if argv is None else argv)
  try:
    if '-h' in argv or '--help' in argv:
      parser.print_help()
      return 0
    args = parser.parse_args(argv)
    if not (args.out or args.out_dir):
      raise UsageError('give --out FILE.png (a grid) and/or --out-dir DIR (one PNG per image).')
    postprocess.parse(args.postprocess)
    check_outputs(args)
    with quiet.logs(args.verbosity):
      return body(args)
  except UsageError as e:
    print(f'{parser.prog}: error: {e}\n(see {parser.prog} --help)', file=sys.stderr)
    return EXIT_USAGE
  except errors.kinds(table) as e:
    return errors.report(parser.prog, e, table)


def names_for(prefix: str, n: int) -> List[str]:
  return [f'{prefix}{i:03d}' for i in range(n)]
