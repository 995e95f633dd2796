"""Input pipeline: any TFDS image dataset -> sharded, augmented batches for the pmapped step.

The training stream depends only on (dataset, seed, global batch size), never on the number of
processes or devices: every process walks the same shuffled global stream (epoch e is shuffled with
seed (seed, e)), and each process keeps its own slice of every global batch. So a run on one host
and on four give the same batches, and resuming at step s only needs the position s * batch_size.
Augmentation seeds come from each element's position in that stream, for the same reason.
"""
import dataclasses
from typing import Iterator, Optional, Sequence

import jax
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

import gan.data  # noqa: F401  (registers the embedded builders)
from gan.data.vocab import Vocabulary

IMAGE_KEY = 'image'


@dataclasses.dataclass
class DatasetSpec:
  builder: tfds.core.DatasetBuilder
  vocabulary: Vocabulary
  image_key: str

  def num_examples(self, split: str) -> int:
    try:
      return self.builder.info.splits[split].num_examples
    except KeyError:  # No split metadata (e.g. tfds.testing.mock_data): count the examples.
      ds = self.builder.as_dataset(split=split)
      return int(ds.reduce(0, lambda n, _: n + 1))


def open_dataset(name: str, data_dir: Optional[str] = None,
                 attributes: Optional[Sequence[str]] = None, prepare: bool = True,
                 expected: Optional[Vocabulary] = None) -> DatasetSpec:
  """Opens (and if needed builds/downloads) a TFDS dataset and reads its attribute vocabulary.

  Every ClassLabel feature becomes a conditioning attribute (or those named in `attributes`).
  expected: the vocabulary a run was trained with. When the dataset's newest version has other
  attributes (synthetic_products 1.1.0 added `material`) and `name` pins no version, the newest
  version whose vocabulary is `expected` is opened instead, so older runs resume and evaluate
  on the data they were trained on.
  """
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError as e:
    raise ValueError(f'Dataset {name!r} was not found (data_dir={data_dir!r}). Use a registered TFDS '
                     'name (e.g. synthetic_products, fashion_mnist) or build your catalogue with '
                     '`python -m gan.data.catalog build --source DIR --data-dir OUT` and pass '
                     '--config.data.name=catalog --config.data.data_dir=OUT.') from e
  vocabulary = _vocabulary(builder, name, attributes)
  if expected is not None and _same(vocabulary, expected):
    vocabulary = expected  # The run's attribute order (TFDS may list features in another).
  elif expected is not None and ':' not in name:
    builder, vocabulary = _version_with(builder, name, data_dir, attributes, expected,
                                        (builder, vocabulary))
  if prepare:
    builder.download_and_prepare()
  features = builder.info.features
  image_keys = [k for k, f in features.items() if isinstance(f, tfds.features.Image)]
  if not image_keys:
    raise ValueError(f'Dataset {name!r} has no image feature (features: {", ".join(features)}).')
  image_key = IMAGE_KEY if IMAGE_KEY in image_keys else image_keys[0]
  return DatasetSpec(builder, vocabulary, image_key)


def _vocabulary(builder, name: str, attributes: Optional[Sequence[str]]) -> Vocabulary:
  features = builder.info.features
  labels = {k: tuple(f.names) for k, f in features.items() if isinstance(f, tfds.features.ClassLabel)}
  if not _declared_feature_order(builder):
    # A dataset read back from its files (a built catalogue) lists its features in a different
    # order in every process (TFDS keeps them in a hash-ordered set): sort them, so every host of
    # a run, and every run of one catalogue, numbers the attributes alike.
    labels = dict(sorted(labels.items()))
  if attributes is not None:
    unknown = [a for a in attributes if a not in labels]
    if unknown:
      raise ValueError(f'Attributes {unknown} are not ClassLabel features of {name!r}; '
                       f'available: {", ".join(labels) or "(none)"}.')
    labels = {a: labels[a] for a in attributes}
  return Vocabulary.from_dict(labels)


def _declared_feature_order(builder) -> bool:
  """Whether the builder is a dataset class whose code declares its features in order (not one
  TFDS rebuilt from a data directory's files)."""
  return not isinstance(builder, tfds.core.read_only_builder.ReadOnlyBuilder)


def _same(a: Vocabulary, b: Vocabulary) -> bool:
  """The same attributes with the same values, in any attribute order."""
  return dict(a.attributes) == dict(b.attributes)


def _version_with(builder, name, data_dir, attributes, expected, default):
  """(builder, vocabulary) of the newest other version of `builder` whose vocabulary is
  `expected`, else `default`."""
  for version in sorted(builder.versions, reverse=True):
    if version == builder.version:
      continue
    older = tfds.builder(f'{name}:{version}', data_dir=data_dir)
    try:
      vocabulary = _vocabulary(older, name, attributes)
    except ValueError:
      continue
    if _same(vocabulary, expected):
      from absl import logging
      logging.info('Dataset %s: the run was trained on version %s (attributes %s); using it.',
                   name, version, ', '.join(expected.names))
      return older, expected
  return default


def _decode(spec: DatasetSpec, resolution: int):
  names = spec.vocabulary.names

  def decode(example):
    image = example[spec.image_key]
    if image.shape[-1] == 1:
      image = tf.image.grayscale_to_rgb(image)
    elif image.shape[-1] == 4:
      image = image[..., :3]
    if image.shape[0] != resolution or image.shape[1] != resolution:
      image = tf.image.resize(image, (resolution, resolution), method='area', antialias=True)
      image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    labels = tf.stack([tf.cast(example[n], tf.int32) for n in names]) if names else tf.zeros(
        [0], tf.int32)
    return {'image': image, 'labels': labels}

  return decode


def to_float(image):
  return tf.cast(image, tf.float32) / 127.5 - 1.0


def decoded_split(spec: DatasetSpec, split: str, resolution: int, cache: bool = True):
  ds = spec.builder.as_dataset(split=split, shuffle_files=False)
  ds = ds.map(_decode(spec, resolution), num_parallel_calls=tf.data.AUTOTUNE)
  return ds.cache() if cache else ds


def train_dataset(spec: DatasetSpec, config, *, start_step: int = 0,
                  process_index: Optional[int] = None, process_count: Optional[int] = None,
                  augment_fn=None) -> tf.data.Dataset:
  """Batches of this process's slice of the global training stream, from step `start_step` on.

  Yields {'image': float32 [local_batch, R, R, 3] in [-1, 1], 'labels': int32 [local_batch, A]}.
  augment_fn(image, seed) -> image, for one float image (see gan/data/augment.py).
  """
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  global_batch = config.batch_size
  if global_batch % process_count:
    raise ValueError(f'batch_size={global_batch} must divide by the process count {process_count}.')
  local_batch = global_batch // process_count
  split = config.data.train_split
  n = spec.num_examples(split)
  if n < global_batch:
    raise ValueError(f'The {split!r} split has {n} images, fewer than one batch ({global_batch}). '
                     'Lower --config.batch_size or add images.')
  base = decoded_split(spec, split, config.data.resolution, config.data.cache)
  buffer = min(config.data.shuffle_buffer, n)
  seed = config.seed
  start = start_step * global_batch
  first_epoch = start // n

  def epoch(e):
    return base.shuffle(buffer, seed=tf.cast(seed, tf.int64) * 1_000_003 + e,
                        reshuffle_each_iteration=False)

  ds = tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max).flat_map(epoch)
  ds = ds.skip(start - first_epoch * n)
  ds = tf.data.Dataset.zip(tf.data.Dataset.range(start, np.iinfo(np.int64).max), ds)
  ds = ds.batch(global_batch, drop_remainder=True)
  lo = process_index * local_batch
  ds = ds.map(lambda pos, ex: (pos[lo:lo + local_batch],
                               {k: v[lo:lo + local_batch] for k, v in ex.items()}))
  ds = ds.unbatch()

  def prepare(pos, ex):
    image = to_float(ex['image'])
    if augment_fn is not None:
      image = augment_fn(image, tf.stack([tf.cast(seed, tf.int64), pos]))
    return {'image': image, 'labels': ex['labels']}

  ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  ds = ds.batch(local_batch, drop_remainder=True)
  return ds.prefetch(tf.data.AUTOTUNE)


def eval_dataset(spec: DatasetSpec, config, split: Optional[str] = None, batch_size: int = 256,
                 max_examples: Optional[int] = None) -> tf.data.Dataset:
  """A split in order, once, as float batches (the last batch may be smaller)."""
  ds = decoded_split(spec, split or config.data.eval_split, config.data.resolution, cache=False)
  if max_examples:
    ds = ds.take(max_examples)
  ds = ds.map(lambda ex: {'image': to_float(ex['image']), 'labels': ex['labels']})
  return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def sharded_batches(ds: tf.data.Dataset) -> Iterator:
  """numpy batches reshaped to [local_devices, per_device, ...] for pmap."""
  d = jax.local_device_count()
  for batch in ds.as_numpy_iterator():
    yield {k: v.reshape((d, -1) + v.shape[1:]) for k, v in batch.items()}
