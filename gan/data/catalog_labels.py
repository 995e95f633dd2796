"""From the kept images' attribute values to ClassLabel vocabularies and train/test splits (pure)."""
import collections
import math
from typing import Dict, List, Sequence, Tuple

import numpy as np

from gan.data.catalog_report import OTHER

RARE_POLICIES = ('other', 'drop')


def rare_values(values: Sequence[Tuple[str, ...]], features: Sequence[str], min_count: int
                ) -> Dict[str, Dict[str, int]]:
  """feature -> {value: count} of the values seen fewer than `min_count` times (most first)."""
  out = {}
  for j, feature in enumerate(features):
    counts = collections.Counter(v[j] for v in values)
    rare = [(v, n) for v, n in counts.items() if n < min_count]
    out[feature] = dict(sorted(rare, key=lambda vn: (-vn[1], vn[0])))
  return out


def fold(values: Tuple[str, ...], rare: Sequence[Dict[str, int]]) -> Tuple[str, ...]:
  """The values with each rare one replaced by OTHER."""
  return tuple(OTHER if v in r else v for v, r in zip(values, rare))


def first_rare(values: Tuple[str, ...], features: Sequence[str],
               rare: Sequence[Dict[str, int]]):
  """(feature, value, count) of the first rare value of an image, or None."""
  for f, v, r in zip(features, values, rare):
    if v in r:
      return f, v, r[v]
  return None


def vocabulary(values: Sequence[Tuple[str, ...]], features: Sequence[str]
               ) -> Dict[str, List[str]]:
  return {f: sorted({v[j] for v in values}) for j, f in enumerate(features)}


def case_variants(vocab: Dict[str, List[str]]) -> List[str]:
  """Warnings for values that differ only in letter case (likely one value typed twice)."""
  out = []
  for feature, names in vocab.items():
    groups = collections.defaultdict(list)
    for n in names:
      groups[n.casefold()].append(n)
    clashes = [' / '.join(g) for g in groups.values() if len(g) > 1]
    if clashes:
      out.append(f'{feature} has values that differ only in case, kept apart: '
                 f'{", ".join(clashes[:5])}; fix the spelling in the source if they are one')
  return out


def assign_splits(strata: Sequence[str], holdout: float, seed: int) -> List[str]:
  """Deterministic, stratified 'train'/'test' assignment for items in a fixed order.

  The test size is round(n * holdout), at least 1 when holdout > 0 and n >= 2, and it is
  shared between strata in proportion to their size (largest remainders first). Every
  stratum keeps at least one training item, so a stratum of one is always in train.
  """
  n = len(strata)
  target = int(math.floor(n * holdout + 0.5))
  if holdout > 0 and n >= 2:
    target = min(max(target, 1), n - 1)
  groups = collections.defaultdict(list)
  for i, s in enumerate(strata):
    groups[s].append(i)
  keys = sorted(groups)
  quota = {k: len(groups[k]) * target / n if n else 0.0 for k in keys}
  take = {k: min(int(quota[k]), len(groups[k]) - 1) for k in keys}
  order = sorted(keys, key=lambda k: (-(quota[k] - int(quota[k])), k))
  while sum(take.values()) < target:
    open_keys = [k for k in order if take[k] < len(groups[k]) - 1]
    if not open_keys:
      break  # Only singleton strata left: the test split comes out smaller.
    for k in open_keys[:target - sum(take.values())]:
      take[k] += 1
  rng = np.random.default_rng(seed)
  splits = ['train'] * n
  for k in keys:
    for j in rng.permutation(len(groups[k]))[:take[k]]:
      splits[groups[k][j]] = 'test'
  return splits
