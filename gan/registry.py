"""Small name -> component registries (big_vision style): configs choose parts by string."""
from typing import Any, Callable, Dict


class Registry:
  """Maps names to components; an unknown name is an error that lists the valid ones."""

  def __init__(self, kind: str, plural: str = ''):
    self.kind = kind
    self.plural = plural or f'{kind} names'  # As in "Valid <plural>: ...".
    self._items: Dict[str, Any] = {}

  def register(self, name: str) -> Callable[[Any], Any]:
    def decorator(item):
      if name in self._items:
        raise ValueError(f"{self.kind} {name!r} is registered twice.")
      self._items[name] = item
      return item
    return decorator

  def get(self, name: str) -> Any:
    if name not in self._items:
      raise ValueError(
          f"Unknown {self.kind} {name!r}. Valid {self.plural}: {', '.join(sorted(self._items))}.")
    return self._items[name]

  def names(self):
    return sorted(self._items)

  def __contains__(self, name: str) -> bool:
    return name in self._items
