"""The catalogue's attribute distribution: which attribute combinations the training split holds,
and how often.

It answers "any" the way the catalogue would: when a user asks for a navy shoe and leaves the
pattern out, the pattern is drawn from the navy shoes of the training split (by frequency), so the
generator always gets a full label, the kind it trains on most, and every image has nameable
attributes (the tools report them). The model's own "unspecified" label (learned from attribute
dropout) stays available, but it sees few examples (all other attributes dropped at once) and is
less predictable: in two 5400-step runs (attribute dropout 0.2 and 0.1), 'dotted' with the others
unspecified was read as dotted 4% and 100% of the time; in full labels, 87% and 84%.

Saved next to the checkpoints (workdir/label_distribution.json) by training, so sampling tools
need no dataset. Labels use the vocabulary's encoding: value index in [0, n), n = unspecified.
"""
import dataclasses
import json
import os
from typing import Optional, Sequence, Tuple

import numpy as np

from gan import rundir


@dataclasses.dataclass(frozen=True)
class LabelPrior:
  """Distinct full label vectors of a split and how many examples carry each."""
  names: Tuple[str, ...]        # attribute names, in label order
  num_classes: Tuple[int, ...]
  combinations: np.ndarray      # int32 [K, A], every entry in [0, num_classes[a])
  counts: np.ndarray            # int64 [K], > 0

  def __post_init__(self):
    combos, counts = np.asarray(self.combinations), np.asarray(self.counts)
    a = len(self.names)
    if len(self.num_classes) != a or combos.ndim != 2 or combos.shape[1] != a:
      raise ValueError(f'Label combinations of shape {combos.shape} do not match the attributes '
                       f'{list(self.names)} with sizes {list(self.num_classes)}.')
    if len(counts) != len(combos) or not len(combos) or np.any(counts <= 0):
      raise ValueError('A label distribution needs at least one combination and a positive count '
                       'for each.')
    if np.any(combos < 0) or np.any(combos >= np.asarray(self.num_classes, np.int64)[None]):
      raise ValueError('A label combination holds a value outside its attribute\'s range.')

  @classmethod
  def from_labels(cls, labels, names: Sequence[str], num_classes: Sequence[int]) -> 'LabelPrior':
    """From full labels int [N, A] (every attribute specified)."""
    labels = np.asarray(labels, np.int64).reshape(-1, len(names))
    combos, counts = np.unique(labels, axis=0, return_counts=True)
    return cls(tuple(names), tuple(int(n) for n in num_classes), combos.astype(np.int32),
               counts.astype(np.int64))

  def marginal(self, a: int) -> np.ndarray:
    """Probabilities [num_classes[a]] of attribute a's values."""
    p = np.bincount(self.combinations[:, a], weights=self.counts, minlength=self.num_classes[a])
    return p / p.sum()

  def fill(self, labels, rng: np.random.Generator) -> np.ndarray:
    """Labels [N, A] with every unspecified entry drawn as the catalogue has it.

    Each row's free attributes come together from one training combination that agrees with the
    row's specified attributes, drawn by frequency. If no training example agrees with them (a
    combination the catalogue never shows), each free attribute is drawn from its own marginal.
    Rows are independent draws; the same rng state gives the same labels.
    """
    labels = np.array(labels, np.int32).reshape(-1, len(self.names))
    free = labels >= np.asarray(self.num_classes, np.int32)[None]
    if not free.any():
      return labels
    rows = np.flatnonzero(free.any(axis=1))
    # Rows with the same specified values share one candidate set.
    keys = np.where(free[rows], -1, labels[rows])
    uniq, group = np.unique(keys, axis=0, return_inverse=True)
    for g, key in enumerate(uniq):
      members = rows[group.reshape(-1) == g]
      fixed = key >= 0
      agree = np.all(self.combinations[:, fixed] == key[fixed][None], axis=1)
      if agree.any():
        weights = self.counts[agree] / self.counts[agree].sum()
        picks = self.combinations[agree][rng.choice(int(agree.sum()), len(members), p=weights)]
        labels[members[:, None], np.flatnonzero(~fixed)[None]] = picks[:, ~fixed]
      else:
        for a in np.flatnonzero(~fixed):
          labels[members, a] = rng.choice(self.num_classes[a], len(members), p=self.marginal(a))
    return labels

  # ------------------------------------------------------------------------------ persistence

  def to_json(self) -> str:
    return json.dumps({'attributes': list(self.names), 'num_classes': list(self.num_classes),
                       'combinations': self.combinations.tolist(),
                       'counts': self.counts.tolist()})

  @classmethod
  def from_json(cls, text: str) -> 'LabelPrior':
    data = json.loads(text)
    return cls(tuple(data['attributes']), tuple(int(n) for n in data['num_classes']),
               np.asarray(data['combinations'], np.int32).reshape(-1, len(data['attributes'])),
               np.asarray(data['counts'], np.int64))

  def save(self, directory: str) -> str:
    return rundir.atomic_write(os.path.join(directory, rundir.LABEL_DISTRIBUTION), self.to_json())


def load(directory: str, names: Sequence[str], num_classes: Sequence[int]) -> Optional[LabelPrior]:
  """The run's saved distribution, or None if it has none. A damaged file, or one written for other
  attributes, is an error that says how to recover."""
  path = os.path.join(directory, rundir.LABEL_DISTRIBUTION)
  fix = (f'Delete {path} to sample with the model\'s "unspecified" label (--any=unspecified); the '
         'next `python -m gan.main` or `python -m gan.evaluate` on this workdir rewrites it from '
         'the dataset.')
  try:
    prior = rundir.read_run_file(directory, rundir.LABEL_DISTRIBUTION, LabelPrior.from_json, fix)
  except FileNotFoundError:
    return None  # Runs from before the file existed sample with the model's own label.
  if prior.names != tuple(names) or prior.num_classes != tuple(num_classes):
    raise ValueError(f'The label distribution {path} is for attributes '
                     f'{dict(zip(prior.names, prior.num_classes))}, but the model has '
                     f'{dict(zip(names, num_classes))}. {fix}')
  return prior


def from_split(spec, split: str) -> LabelPrior:
  """Counts a TFDS split's attribute labels (images are not decoded)."""
  import tensorflow_datasets as tfds
  vocab = spec.vocabulary
  ds = spec.builder.as_dataset(split=split, shuffle_files=False,
                               decoders={spec.image_key: tfds.decode.SkipDecoding()})
  ds = ds.map(lambda ex: [ex[n] for n in vocab.names]).batch(4096)
  labels = np.concatenate([np.stack(cols, axis=-1) for cols in ds.as_numpy_iterator()])
  return LabelPrior.from_labels(labels, vocab.names, vocab.num_classes)


def ensure(directory: str, spec, split: str, write: bool = True) -> LabelPrior:
  """The workdir's distribution; built from the dataset split (and saved) when missing or stale."""
  vocab = spec.vocabulary
  try:
    prior = load(directory, vocab.names, vocab.num_classes)
  except ValueError as e:
    from absl import logging
    logging.warning('%s Rebuilding it from the %r split.', e, split)
    prior = None
  if prior is None:
    prior = from_split(spec, split)
    if write:
      prior.save(directory)
  return prior
