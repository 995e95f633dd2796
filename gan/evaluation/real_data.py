"""Which real images evaluation compares against: fixed random subsets of a split, and the full
conditions (with their real spread) that intra-condition diversity is measured on."""
from typing import Dict

import numpy as np
import tensorflow as tf

from gan.data import pipeline
from gan.evaluation import metrics

# Arrays of `diversity_reference`, stored under these names in the feature cache.
DIVERSITY_KEYS = ('diversity_labels', 'diversity_real_pixel', 'diversity_real_feature')


def random_subset(spec, split: str, resolution: int, count: int, seed: int):
  """`count` examples of `split` drawn uniformly without replacement (fixed by `seed`), in order.

  Uniform rather than the first `count`: a catalogue's split may be sorted by attribute.
  Returns (uint8 images [n, R, R, 3], int32 labels [n, A]).
  """
  total = spec.num_examples(split)
  ds = pipeline.decoded_split(spec, split, resolution, cache=False)
  if count < total:
    keep = np.zeros(total, bool)
    keep[np.random.default_rng([seed, total]).choice(total, count, replace=False)] = True
    keep = tf.constant(keep)

    def kept(index, example):
      del example
      return tf.gather(keep, index)

    def drop_index(index, example):
      del index
      return example

    ds = ds.enumerate().filter(kept).map(drop_index)
  images, labels = [], []
  for batch in ds.batch(512).prefetch(2).as_numpy_iterator():
    images.append(batch['image'])
    labels.append(batch['labels'])
  if not images:
    raise ValueError(f'The {split!r} split of {spec.builder.info.full_name} is empty.')
  return np.concatenate(images), np.concatenate(labels).astype(np.int32)


def split_size(spec, split: str, what: str) -> int:
  """Examples in `split`; a split the dataset lacks is an error saying how to get one."""
  splits = spec.builder.info.splits
  if splits and split not in splits:
    raise ValueError(f'Evaluation needs a {what} split {split!r}, but '
                     f'{spec.builder.info.full_name} has splits {", ".join(splits) or "(none)"}. '
                     f'Set --config.data.{what}_split, or build the catalogue with a held-out '
                     'part (--holdout 0.1).')
  return spec.num_examples(split)


def diversity_reference(images, labels, feats, num_conditions: int, per_condition: int,
                        seed: int) -> Dict[str, np.ndarray]:
  """The conditions intra-condition diversity is measured on, and their real spreads.

  The `num_conditions` most frequent full label combinations (ties in a fixed random order) with
  at least two images; for each, the mean pairwise RMS pixel distance and feature distance of up
  to `per_condition` of its images. Returns arrays named as in DIVERSITY_KEYS.
  """
  empty = {'diversity_labels': np.zeros((0, labels.shape[1]), np.int32),
           'diversity_real_pixel': np.zeros(0), 'diversity_real_feature': np.zeros(0)}
  if not num_conditions or labels.shape[1] == 0:
    return empty
  combos, inverse, counts = np.unique(labels, axis=0, return_inverse=True, return_counts=True)
  inverse = inverse.reshape(-1)
  rng = np.random.default_rng([seed, 11])
  tiebreak = rng.permutation(len(combos))
  order = np.lexsort((tiebreak, -np.minimum(counts, per_condition)))
  chosen = [c for c in order if counts[c] >= 2][:num_conditions]
  if not chosen:
    return empty
  pixel, feature = [], []
  for c in chosen:
    members = rng.permutation(np.flatnonzero(inverse == c))[:per_condition]
    pixel.append(metrics.mean_pairwise_rms(images[members]))
    feature.append(metrics.mean_pairwise_distance(feats[members]))
  return {'diversity_labels': combos[chosen].astype(np.int32),
          'diversity_real_pixel': np.asarray(pixel), 'diversity_real_feature': np.asarray(feature)}
