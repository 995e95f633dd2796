"""Writing a catalogue as a TFDS dataset, shard by shard, and installing it atomically.

A build works in DATA_DIR/.NAME.building-PID-XXXX/ (which TFDS never reads as NAME): the staged
PNGs, then NAME/VERSION/ with the TFRecord shards, metadata and report. Only when all of it is
written and re-read does it move to DATA_DIR/NAME, by rename. A build that is killed leaves at
most that hidden folder, which the next build removes (its PID is dead) before it starts.
"""
import math
import os
import re
import shutil
import tempfile
from typing import Callable, Dict, Optional, Sequence

import numpy as np

from gan.processes import pid_alive

VERSION = '1.0.0'
SHARD_BYTES = 256 << 20  # ~256 MiB of encoded examples per TFRecord shard.


def features_dict(resolution: int, vocabulary: Dict[str, Sequence[str]],
                  columns: Dict[str, str]):
  # TensorFlow loads here, so the writing progress bar that starts next does not count it.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  del tf
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  spec = {'image': tfds.features.Image(shape=(resolution, resolution, 3),
                                       encoding_format='png',
                                       doc='Product photo, fitted to a square.')}
  for feature, names in vocabulary.items():
    spec[feature] = tfds.features.ClassLabel(names=list(names), doc=f'From {columns[feature]}.')
  return tfds.features.FeaturesDict(spec)


def write_tfds(version_dir: str, name: str, features, splits: Dict[str, np.ndarray],
               positions: np.ndarray, staged, labels: np.ndarray, label_features: Sequence[str], description: str,
               progress: Optional[Callable[[int], None]] = None) -> None:
  """Writes TFRecord shards + TFDS metadata, one example at a time, then re-reads them.

  splits: split -> ranks of its images, in the order to write; positions: rank -> where its
  PNG is in `staged`; labels: [rank, feature] ClassLabel ids, features in `label_features` order.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  progress = progress or (lambda n: None)
  lengths = np.frombuffer(staged.lengths, np.int64) if len(staged.lengths) else np.zeros(0, int)
  os.makedirs(version_dir)
  split_infos = []
  for split, ranks in splits.items():
    total = int(lengths[positions[ranks]].sum())
    num_shards = max(1, min(len(ranks), math.ceil(total / SHARD_BYTES)))
    bounds = np.linspace(0, len(ranks), num_shards + 1).astype(int)
    template = tfds.core.ShardedFileTemplate(
        data_dir=tfds.core.Path(version_dir),
        template=tfds.core.naming.DEFAULT_FILENAME_TEMPLATE,
        dataset_name=name, split=split, filetype_suffix='tfrecord')
    written = 0
    for path, lo, hi in zip(template.sharded_filepaths(num_shards), bounds[:-1], bounds[1:]):
      with tf.io.TFRecordWriter(os.fspath(path)) as writer:
        for r in ranks[lo:hi]:
          example = dict(zip(label_features, (int(i) for i in labels[r])))
          example['image'] = staged.read(int(positions[r]))
          record = features.serialize_example(example)
          written += len(record)
          writer.write(record)
          progress(1)
    split_infos.append(tfds.core.SplitInfo(
        name=split, shard_lengths=[int(b) for b in np.diff(bounds)], num_bytes=written,
        filename_template=template))
  tfds.folder_dataset.write_metadata(data_dir=version_dir, features=features,
                                     split_infos=split_infos, version=VERSION,
                                     check_data=False, description=description)
  builder = tfds.builder_from_directory(version_dir)
  for split, ranks in splits.items():
    if builder.info.splits[split].num_examples != len(ranks):
      raise RuntimeError(f'{split} split re-read with {builder.info.splits[split].num_examples}'
                         f' examples, {len(ranks)} written.')
  first = next(iter(builder.as_dataset(
      split=f'{next(iter(splits))}[:1]', read_config=tfds.ReadConfig(try_autocache=False))))
  if tuple(first['image'].shape) != features['image'].shape:
    raise RuntimeError(f'image re-read with shape {first["image"].shape}.')


def work_folder(data_dir: str, name: str) -> str:
  """A fresh hidden folder in data_dir for one build (its PID in the name)."""
  return tempfile.mkdtemp(prefix=f'.{name}.building-{os.getpid()}-', dir=data_dir)


def clean_stale(data_dir: str, name: str) -> None:
  """Removes leftovers of killed builds of `name`; restores a dataset caught mid-swap."""
  pattern = re.compile(rf'^\.{re.escape(name)}\.(building|old)-(\d+)-')
  for entry in sorted(os.listdir(data_dir)):
    m = pattern.match(entry)
    if not m or pid_alive(int(m.group(2))):
      continue
    path = os.path.join(data_dir, entry)
    final = os.path.join(data_dir, name)
    if (m.group(1) == 'old' and not os.path.lexists(final)
        and os.path.isdir(os.path.join(path, name))):
      os.rename(os.path.join(path, name), final)  # Killed between the renames of install.
    shutil.rmtree(path, ignore_errors=True)


def install(built: str, final: str, data_dir: str, name: str) -> None:
  """Moves the finished dataset into place; the old one goes only once the new one is in."""
  old = None
  if os.path.lexists(final):
    old = tempfile.mkdtemp(prefix=f'.{name}.old-{os.getpid()}-', dir=data_dir)
    os.rename(final, os.path.join(old, name))
  os.rename(built, final)
  if old:
    shutil.rmtree(old, ignore_errors=True)
