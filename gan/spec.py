"""The one small language that chooses registered ops by name: 'flip, zoom(max_scale=1.1) | hue'.

A spec is None, one string, or a list of strings. Items are separated by commas or pipes outside
parentheses; each is `name` or `name(key=value, ...)`. Names are not case-sensitive; values are
Python literals (numbers, strings, tuples), and a bare word is a string, so `translate(fill=edge)`
needs no quotes. Used by data.augment (gan/data/augment.py), the DiffAugment policy
(gan/data/diffaug.py) and --postprocess (gan/control/postprocess.py).
"""
import ast
import re
from typing import Any, Callable, Dict, List, Sequence, Tuple, Union

from gan.registry import Registry

Spec = Union[None, str, Sequence[str]]
Op = Tuple[str, Dict[str, Any]]


def _no_arguments(item: Any) -> Sequence[str]:
  del item
  return ()


class OpSpec:
  """Parses specs of the ops of one registry; every error names the bad op or argument and lists
  the valid ones.

  arguments(item) -> the keyword arguments a registered item takes (none by default).
  example: a valid spec, shown in the errors.
  """

  def __init__(self, registry: Registry,
               arguments: Callable[[Any], Sequence[str]] = _no_arguments, example: str = ''):
    self.registry, self.arguments, self.example = registry, arguments, example
    self.kind = registry.kind

  def parse(self, spec: Spec) -> List[Op]:
    """[(name, kwargs), ...] in order, each name registered and each argument one it takes."""
    if spec is None:
      return []
    if isinstance(spec, str):
      texts = [spec]
    elif isinstance(spec, (list, tuple)):
      texts = list(spec)
      for text in texts:
        if not isinstance(text, str):
          raise ValueError(f'{self._title()} spec entries must be strings, got {text!r}.')
    else:
      raise ValueError(f'{self._title()} spec must be a string or a list of strings, got {spec!r}.')
    return [self._check(self._parse_item(item), text)
            for text in texts for item in self._split(text)]

  def names(self, spec: Spec) -> List[str]:
    """The op names of a spec, in order (for registries whose ops take no arguments)."""
    return [name for name, _ in self.parse(spec)]

  def _title(self) -> str:
    return self.kind[:1].upper() + self.kind[1:]

  def _eg(self) -> str:
    return f', e.g. {self.example!r}' if self.example else ''

  def _split(self, text: str) -> List[str]:
    """'a(x=1, y=(2, 3)), b | c' -> ['a(x=1, y=(2, 3))', 'b', 'c']: at , and | outside brackets."""
    parts, depth, current = [], 0, []
    for char in text:
      if char in '([':
        depth += 1
      elif char in ')]':
        depth -= 1
        if depth < 0:
          break
      if char in ',|' and depth == 0:
        parts.append(''.join(current))
        current = []
      else:
        current.append(char)
    if depth != 0:
      raise ValueError(f'Unbalanced parentheses in {self.kind} spec {text!r}.')
    parts.append(''.join(current))
    return [p.strip() for p in parts if p.strip()]

  def _parse_item(self, item: str) -> Op:
    """'zoom(max_scale=1.15)' -> ('zoom', {'max_scale': 1.15})."""
    if re.fullmatch(r'[A-Za-z_]\w*', item):
      return item.lower(), {}
    try:
      node = ast.parse(item, mode='eval').body
    except SyntaxError:
      node = None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
      raise ValueError(f'Cannot parse {self.kind} {item!r}: write `name` or '
                       f'`name(key=value, ...)`{self._eg()}.')
    if node.args:
      raise ValueError(f'{self._title()} {item!r}: pass arguments by name (key=value), '
                       f'e.g. `{node.func.id}(key=value)`.')
    kwargs = {}
    for keyword in node.keywords:
      if keyword.arg is None:
        raise ValueError(f'{self._title()} {item!r}: **kwargs is not supported.')
      kwargs[keyword.arg] = self._literal(keyword.value, item)
    return node.func.id.lower(), kwargs

  def _literal(self, node: ast.AST, item: str) -> Any:
    if isinstance(node, ast.Name):  # A bare word is a string.
      return node.id
    try:
      return ast.literal_eval(node)
    except ValueError:
      raise ValueError(f'{self._title()} {item!r}: argument values must be literals '
                       f'(numbers, strings, tuples), got {ast.unparse(node)!r}.') from None

  def _check(self, op: Op, text: str) -> Op:
    name, kwargs = op
    if name not in self.registry:
      where = f' in {text!r}' if text.strip().lower() != name else ''
      example = f'; e.g. {self.example!r}' if self.example else ''
      raise ValueError(f'Unknown {self.kind} {name!r}{where}. Valid {self.registry.plural}: '
                       f'{", ".join(self.registry.names())}{example}.')
    valid = list(self.arguments(self.registry.get(name)))
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
      raise ValueError(f'{self._title()} {name!r} has no argument(s) {", ".join(unknown)}. '
                       f'Valid arguments: {", ".join(valid) if valid else "(none)"}.')
    return op
