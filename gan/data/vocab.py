"""The attribute vocabulary: which attributes a model is conditioned on and the names of their values.

Saved next to the checkpoints so a checkpoint can be steered by name without the dataset.
Label encoding used everywhere: value index in [0, n), and `n` (== num_classes) means "unspecified".
"""
import dataclasses
import json
import os
from typing import Dict, Mapping, Sequence, Tuple

import numpy as np

from gan import rundir

# Colour and color are the same attribute to a user: accept either spelling.
_ALIASES = {'color': 'colour', 'colour': 'color'}


@dataclasses.dataclass(frozen=True)
class Vocabulary:
  """Ordered attributes, each with its ordered value names."""
  attributes: Tuple[Tuple[str, Tuple[str, ...]], ...]

  @classmethod
  def from_dict(cls, mapping: Mapping[str, Sequence[str]]) -> 'Vocabulary':
    return cls(tuple((str(k), tuple(str(v) for v in vs)) for k, vs in mapping.items()))

  @property
  def names(self) -> Tuple[str, ...]:
    return tuple(name for name, _ in self.attributes)

  @property
  def num_classes(self) -> Tuple[int, ...]:
    return tuple(len(values) for _, values in self.attributes)

  def __len__(self) -> int:
    return len(self.attributes)

  def values(self, attribute: str) -> Tuple[str, ...]:
    return dict(self.attributes)[self.resolve_attribute(attribute)]

  def resolve_attribute(self, attribute: str) -> str:
    names = self.names
    if attribute in names:
      return attribute
    alias = _ALIASES.get(attribute.lower())
    for name in names:
      if name.lower() == attribute.lower() or (alias and name.lower() == alias):
        return name
    raise ValueError(f'Unknown attribute {attribute!r}. This model is conditioned on: '
                     f'{", ".join(names) or "(no attributes)"}.')

  def index_of(self, attribute: str) -> int:
    return self.names.index(self.resolve_attribute(attribute))

  def value_index(self, attribute: str, value: str) -> int:
    values = self.values(attribute)
    lowered = [v.lower() for v in values]
    if value.lower() in lowered:
      return lowered.index(value.lower())
    raise ValueError(f'Unknown value {value!r} for attribute {self.resolve_attribute(attribute)!r}. '
                     f'Valid values: {", ".join(values)}.')

  def unspecified(self) -> np.ndarray:
    """A label vector with every attribute unspecified."""
    return np.asarray(self.num_classes, np.int32)

  def encode(self, assignments: Mapping[str, str]) -> np.ndarray:
    """{'colour': 'red'} -> int32 label vector (unspecified for attributes not given)."""
    labels = self.unspecified().copy()
    for attribute, value in assignments.items():
      labels[self.index_of(attribute)] = self.value_index(attribute, value)
    return labels

  def parse(self, specs: Sequence[str]) -> Dict[str, str]:
    """Parses command-line 'attribute=value' strings into a dict, with clear errors."""
    out = {}
    for spec in specs:
      if '=' not in spec:
        raise ValueError(f'Attribute {spec!r} must be written as attribute=value, e.g. colour=red.')
      attribute, value = (s.strip() for s in spec.split('=', 1))
      attribute = self.resolve_attribute(attribute)
      self.value_index(attribute, value)
      out[attribute] = value
    return out

  def decode(self, labels: Sequence[int]) -> Dict[str, str]:
    out = {}
    for (name, values), label in zip(self.attributes, labels):
      out[name] = values[label] if label < len(values) else 'any'
    return out

  def to_json(self) -> str:
    return json.dumps({'attributes': [{'name': n, 'values': list(v)} for n, v in self.attributes]},
                      indent=2)

  @classmethod
  def from_json(cls, text: str) -> 'Vocabulary':
    data = json.loads(text)
    return cls(tuple((a['name'], tuple(a['values'])) for a in data['attributes']))

  def save(self, directory: str) -> str:
    return rundir.atomic_write(os.path.join(directory, rundir.VOCABULARY), self.to_json())

  @classmethod
  def load(cls, directory: str) -> 'Vocabulary':
    return rundir.read_run_file(directory, rundir.VOCABULARY, cls.from_json,
                                'Copy it from a backup of the same run, or rerun training on this '
                                'workdir to rewrite it.')
