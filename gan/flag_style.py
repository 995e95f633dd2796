"""One flag style for every command: dashed long flags (--out-dir), the underscore spelling
(--out_dir) still accepted."""
import argparse
import sys
from typing import Collection, List, Optional, Sequence


def respell(argv: Sequence[str], names: Optional[Collection[str]] = None,
            sep: str = '-') -> List[str]:
  """argv with each long flag --a_b / --a-b[=VALUE] written with `sep` between its words.

  names: the flags to respell, as written with `sep` (a boolean's --noNAME follows NAME); None =
  every flag. Flags with a dot (--config.model.d_norm) and everything after `--` stay as they are.
  """
  out, other = list(argv), '_' if sep == '-' else '-'
  for i, arg in enumerate(out):
    if arg == '--':
      break
    if not arg.startswith('--') or '.' in arg.split('=', 1)[0]:
      continue
    name, eq, value = arg[2:].partition('=')
    name = name.replace(other, sep)
    if names is None or name in names or (name[:2] == 'no' and name[2:] in names):
      out[i] = f'--{name}{eq}{value}'
  return out


class ArgumentParser(argparse.ArgumentParser):
  """argparse for dashed flags that also accepts their underscore spelling (--num_samples).

  Only the dashed form is registered, so --help shows it; sub-commands get this class too.
  """

  def parse_known_args(self, args=None, namespace=None):
    args = sys.argv[1:] if args is None else args
    return super().parse_known_args(respell(args), namespace)
