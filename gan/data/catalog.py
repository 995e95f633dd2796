"""Bring your own catalogue: a folder of product photos -> a TFDS dataset the trainer reads.

Two layouts:

  folders:  SOURCE/handbag/a.jpg, SOURCE/shoe/b.png, ...  -> ClassLabel feature `category`
            (the first folder level under SOURCE; deeper folders belong to that category).
  CSV:      any files under SOURCE plus --csv FILE with a header row; the first column is
            the image path relative to SOURCE, every other column is an attribute and
            becomes one ClassLabel feature (lower_snake_case of the header; vocabulary =
            sorted values of the images kept). Empty cells are missing values.

    python -m gan.data.catalog build --source photos/ --data-dir ~/tfds --name my_shop \
        [--csv photos/labels.csv] [--resolution 64] [--holdout 0.1] [--fit pad|crop] [--seed 0]

The result loads by name in any process, without importing this module:

    tfds.builder('my_shop', data_dir='~/tfds')          # features: image uint8 [R, R, 3]
    tfds.load('my_shop', data_dir='~/tfds', split='train')  # + one ClassLabel per attribute

Splits are `train` and `test` (the held-out fraction, stratified by `category`, or by the
first attribute column when there is no `category`). `--holdout 0` writes no `test` split.

Every file is decoded and validated (gan.data.images). Bad input never stops the build and
is never dropped silently: it is skipped and listed with its reason in
DATA_DIR/NAME/build_report.json, and counted in the printed summary. The dataset is written
into a temporary folder in DATA_DIR and moved into place only after it is complete and
re-read, so a failed or killed build never leaves a half dataset, and a rebuild replaces
the old one only on success. Errors that would build nothing (no usable image, bad CSV
header, bad arguments) raise CatalogError / exit 1 and write nothing.
"""
import argparse
import collections
import csv as csv_lib
import dataclasses
import hashlib
import io
import json
import math
import os
import re
import shutil
import sys
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from gan import destinations, flag_style, quiet
from gan.data import images
from gan.errors import OutputError
from gan.workdir import pid_alive

VERSION = '1.0.0'
REPORT_FILENAME = 'build_report.json'
BUILDER_ID = 'gan.data.catalog'  # Marks folders this module may replace on a rebuild.
CATEGORY = 'category'
SPLITS = ('train', 'test')
_NAME_RE = re.compile(r'^[a-z][a-z0-9_]*$')
_SHARD_BYTES = 256 << 20  # ~256 MiB of encoded examples per TFRecord shard.

# Why a file or CSV row was skipped: the image reasons plus the catalogue's own.
SKIP_REASONS = dict(images.REASONS, **{
    'duplicate': 'same bytes or same decoded pixels as an earlier image (the first is kept)',
    'missing_file': 'a CSV row whose path is not a file under --source',
    'outside_source': 'a CSV row whose path points outside --source',
    'missing_path': 'a CSV row with an empty path cell',
    'missing_value': 'a CSV row with an empty attribute value',
    'bad_value': 'an attribute value that contains a line break',
    'malformed_row': 'a CSV row with more or fewer cells than the header',
    'no_category': 'a file directly in --source rather than in a category folder',
    'hidden': 'a hidden file or folder (name starts with ".")',
    'unreadable_folder': 'a folder under --source that cannot be listed (permissions?)',
})


class CatalogError(ValueError):
  """The build cannot produce a dataset; nothing was written."""


@dataclasses.dataclass
class Skipped:
  """One file or CSV row left out of the dataset, and why (`reason` is in SKIP_REASONS)."""
  path: str
  reason: str
  detail: str = ''
  row: Optional[int] = None  # 1-based CSV line number (the header is line 1).


@dataclasses.dataclass
class _Candidate:
  path: str  # Relative to the source folder, '/'-separated.
  abs_path: str
  attrs: Dict[str, str]
  row: Optional[int] = None


@dataclasses.dataclass
class _Example:
  path: str
  attrs: Dict[str, str]
  png: bytes


@dataclasses.dataclass
class BuildReport:
  """What a build produced. Also written as JSON to `report_path`."""
  name: str
  path: str  # The dataset folder: DATA_DIR/NAME.
  report_path: str
  data_dir: str
  source: str
  csv: Optional[str]
  layout: str  # 'folders' or 'csv'.
  resolution: int
  fit: str
  background: object
  holdout: float
  seed: int
  vocabulary: Dict[str, List[str]]  # ClassLabel feature -> names (index order).
  columns: Dict[str, str]  # ClassLabel feature -> where it came from (CSV header / folder).
  split_sizes: Dict[str, int]
  counts: Dict[str, Dict[str, Dict[str, int]]]  # feature -> value -> split -> images.
  skipped: List[Skipped]
  num_files: int  # Files / CSV rows looked at.
  upscaled: int  # Images smaller than the resolution (scaled up: may look soft).
  warnings: List[str]
  examples: List[Dict[str, str]]  # {'path', 'split', feature: value, ...} per kept image.

  @property
  def num_images(self) -> int:
    return sum(self.split_sizes.values())

  @property
  def skipped_counts(self) -> Dict[str, int]:
    return dict(sorted(collections.Counter(s.reason for s in self.skipped).items()))

  def to_dict(self) -> dict:
    d = dataclasses.asdict(self)
    d['builder'] = BUILDER_ID
    d['num_images'] = self.num_images
    d['skipped_counts'] = self.skipped_counts
    d['load'] = f"tfds.load({self.name!r}, data_dir={self.data_dir!r}, split='train')"
    return d

  def summary(self) -> str:
    """Human-readable summary: counts per reason, per attribute value, split sizes."""
    lines = [
        f'Built catalogue {self.name!r}: {self.num_images} images '
        f'({self.resolution}x{self.resolution}, fit={self.fit}) from {self.num_files} '
        f'{"CSV rows" if self.layout == "csv" else "files"} in {self.source}',
        '  splits: ' + ', '.join(f'{k}={v}' for k, v in self.split_sizes.items()),
    ]
    for feature, names in self.vocabulary.items():
      lines.append(f'  {feature} ({len(names)} values, from {self.columns[feature]}):')
      for value in names:
        c = self.counts[feature][value]
        lines.append(f'    {value}: {sum(c.values())} '
                     f'({", ".join(f"{k} {v}" for k, v in c.items())})')
    if self.skipped:
      lines.append(f'  skipped {len(self.skipped)} (listed in the report):')
      lines += [f'    {reason}: {n}' for reason, n in self.skipped_counts.items()]
    else:
      lines.append('  skipped: none')
    if self.upscaled:
      lines.append(f'  {self.upscaled} images were smaller than {self.resolution} px and '
                   'were scaled up')
    lines += [f'  warning: {w}' for w in self.warnings]
    lines.append(f'  report: {self.report_path}')
    lines.append(f'  load with: {self.to_dict()["load"]}')
    return '\n'.join(lines)


# ----------------------------------------------------------------------------- arguments


def _check_name(name: str) -> str:
  if not isinstance(name, str) or not _NAME_RE.match(name):
    raise CatalogError(
        f'--name must be lower_snake_case (a letter, then letters, digits or _), e.g. '
        f'"my_shop"; got {name!r}.')
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top; slow import.
  if name in tfds.list_builders(with_community_datasets=False):
    raise CatalogError(
        f'--name {name!r} is a registered TFDS dataset: tfds.builder({name!r}) would load '
        'that one instead of your catalogue. Choose another name.')
  return name


def _check_holdout(holdout) -> float:
  if (isinstance(holdout, bool) or not isinstance(holdout, (int, float, np.floating))
      or not 0.0 <= holdout < 1.0):
    raise CatalogError(
        f'--holdout must be a fraction in [0, 1) (e.g. 0.1 keeps 10% of the images for the '
        f'test split; 0 writes no test split); got {holdout!r}.')
  return float(holdout)


def _check_source(source: str) -> None:
  if not os.path.isdir(source):
    raise CatalogError(f'--source {source} is not a folder.')
  try:
    os.listdir(source)
  except OSError as e:
    raise CatalogError(f'--source {source} cannot be read ({e.strerror or e}). Check its '
                       'permissions, or copy the photos somewhere readable.') from None


def _check_output(data_dir: str, name: str) -> None:
  """Refuses a data_dir that cannot be written, or a folder there that this builder did not make.

  Checked before any image is decoded, so a bad --data-dir fails at once.
  """
  if os.path.exists(data_dir) and not os.path.isdir(data_dir):
    raise CatalogError(f'--data-dir {data_dir} exists and is not a folder.')
  try:
    destinations.check_folder(data_dir, '--data-dir')
  except OutputError as e:
    raise CatalogError(str(e)) from None
  target = os.path.join(data_dir, name)
  if os.path.lexists(target):
    report = os.path.join(target, REPORT_FILENAME)
    try:
      with open(report) as f:
        ours = json.load(f).get('builder') == BUILDER_ID
    except (OSError, ValueError, AttributeError):
      ours = False
    if not ours:
      raise CatalogError(
          f'{target} exists and was not written by the catalogue builder (no '
          f'{REPORT_FILENAME} from {BUILDER_ID}); refusing to replace it. Choose another '
          '--name or --data-dir, or remove that folder.')


# ----------------------------------------------------------------------------- inputs


def _rel(path: str, source: str) -> str:
  return os.path.relpath(path, source).replace(os.sep, '/')


def _walk(source: str, exclude: Optional[str] = None, unreadable: Optional[List] = None):
  """Yields (dirpath, dirnames, filenames) sorted, following folder links once each.

  `exclude` (the output data_dir, when it lies inside the source) is not searched. Folders that
  cannot be listed are appended to `unreadable` as Skipped entries (os.walk drops them silently).
  """
  seen = {os.path.realpath(exclude)} if exclude else set()

  def on_error(error: OSError):
    if unreadable is not None:
      path = _rel(error.filename, source) + '/' if error.filename else source
      unreadable.append(Skipped(path, 'unreadable_folder', error.strerror or str(error)))

  for dirpath, dirnames, filenames in os.walk(source, followlinks=True, onerror=on_error):
    real = os.path.realpath(dirpath)
    if real in seen:  # A link loop, a second link to the same folder, or the output.
      dirnames[:] = []
      continue
    seen.add(real)
    dirnames[:] = [d for d in dirnames if os.path.realpath(os.path.join(dirpath, d)) not in seen]
    dirnames.sort()
    yield dirpath, dirnames, sorted(filenames)


def _category_folders(source: str, data_dir: str) -> List[str]:
  out = os.path.realpath(data_dir)
  return [d for d in sorted(os.listdir(source))
          if os.path.isdir(os.path.join(source, d)) and not d.startswith('.')
          and os.path.realpath(os.path.join(source, d)) != out]


def _scan_folders(source: str, data_dir: str
                  ) -> Tuple[List[_Candidate], List[Skipped], List[str]]:
  """Folder-per-category layout -> candidates with attribute `category`."""
  categories = _category_folders(source, data_dir)
  if not categories:
    raise CatalogError(
        f'No category folders in {source}. Put the photos in one folder per category '
        f'({source}/handbag/*.jpg, {source}/shoe/*.jpg, ...), or describe them with --csv.')
  candidates, skipped, warnings = [], [], []
  for dirpath, dirnames, filenames in _walk(source, exclude=data_dir, unreadable=skipped):
    for d in [d for d in dirnames if d.startswith('.')]:
      skipped.append(Skipped(_rel(os.path.join(dirpath, d), source) + '/', 'hidden',
                             'hidden folder: not searched'))
    dirnames[:] = [d for d in dirnames if not d.startswith('.')]
    for filename in filenames:
      path = os.path.join(dirpath, filename)
      rel = _rel(path, source)
      if filename.startswith('.'):
        skipped.append(Skipped(rel, 'hidden', 'hidden file'))
      elif '/' not in rel:
        skipped.append(Skipped(rel, 'no_category', 'not inside a category folder'))
        if filename.lower().endswith('.csv'):
          warnings.append(f'{rel} is in --source: to use it as labels, pass --csv {path}')
      else:
        candidates.append(_Candidate(rel, path, {CATEGORY: rel.split('/', 1)[0]}))
  return candidates, skipped, warnings


def _feature_name(header: str) -> str:
  """CSV header -> ClassLabel feature name (lower_snake_case)."""
  name = re.sub(r'[^0-9a-z]+', '_', header.strip().lower()).strip('_')
  return f'attr_{name}' if name[:1].isdigit() else name


def _read_csv_rows(csv_path: str) -> List[List[str]]:
  try:
    with open(csv_path, newline='', encoding='utf-8-sig') as f:
      text = f.read()
  except UnicodeDecodeError as e:
    raise CatalogError(f'--csv {csv_path} is not UTF-8 text ({e}); save it as UTF-8 CSV.')
  except OSError as e:
    raise CatalogError(f'--csv {csv_path} cannot be read: {e.strerror or e}.')
  first_line = text.split('\n', 1)[0]
  # Spreadsheets export ',' or, in some locales, ';' or tabs: take the one the header uses.
  delimiter = max([',', ';', '\t'], key=first_line.count)
  try:
    return list(csv_lib.reader(io.StringIO(text, newline=''), delimiter=delimiter))
  except csv_lib.Error as e:
    raise CatalogError(f'--csv {csv_path} is not a valid CSV file: {e}.')


def _resolve(source: str, value: str) -> Optional[str]:
  """CSV path cell -> absolute path, or None if it points outside `source`."""
  value = value.strip().replace('\\', '/')  # Paths typed on Windows.
  path = os.path.normpath(os.path.join(source, value))
  inside = os.path.commonpath([path, source]) == source and path != source
  return path if inside else None


def _scan_csv(source: str, csv_path: str, data_dir: str
              ) -> Tuple[List[_Candidate], List[Skipped], List[str], Dict[str, str]]:
  """CSV layout -> candidates with one attribute per non-path column."""
  rows = _read_csv_rows(csv_path)
  header = [h.strip() for h in rows[0]] if rows else []
  usage = ('The CSV needs a header row, then one row per image: the image path relative to '
           '--source, then one value per attribute, e.g. "path,category,colour" / '
           '"bags/a.jpg,handbag,red".')
  if len(header) < 2:
    raise CatalogError(f'--csv {csv_path} has {len(header)} column(s); it needs at least 2 '
                       f'(image path + one attribute). {usage}')
  first = _resolve(source, header[0])
  if images.is_image_name(header[0]) or (first and os.path.isfile(first)):
    raise CatalogError(f'--csv {csv_path} has no header: its first row starts with the file '
                       f'{header[0]!r}. Add a header row. {usage}')
  if any(not h for h in header):
    raise CatalogError(f'--csv {csv_path} has an empty column name in its header '
                       f'{header}. Name every column. {usage}')
  columns = {}
  for h in header[1:]:
    feature = _feature_name(h)
    if not feature or feature == 'image' or feature in columns:
      clash = 'the image feature' if feature == 'image' else f'column {columns.get(feature)!r}'
      raise CatalogError(
          f'--csv {csv_path}: attribute column {h!r} becomes feature name {feature!r}, '
          f'which clashes with {clash}. Rename the column.')
    columns[feature] = h
  data_rows = [(i, r) for i, r in enumerate(rows[1:], start=2) if r]  # Skip blank lines.
  if not data_rows:
    raise CatalogError(f'--csv {csv_path} has a header but no rows. {usage}')

  candidates, skipped, existing, listed = [], [], 0, set()
  for line, row in data_rows:
    cells = [c.strip() for c in row]
    label = cells[0] or f'<row {line}>'
    if len(cells) != len(header):
      skipped.append(Skipped(label, 'malformed_row',
                             f'{len(cells)} cells, the header has {len(header)}', line))
      continue
    if not cells[0]:
      skipped.append(Skipped(label, 'missing_path', 'the path cell is empty', line))
      continue
    path = _resolve(source, cells[0])
    if path is None:
      skipped.append(Skipped(cells[0], 'outside_source', f'not inside {source}', line))
      continue
    listed.add(path)
    if not os.path.isfile(path):
      what = 'a folder' if os.path.isdir(path) else 'no such file'
      skipped.append(Skipped(cells[0], 'missing_file', f'{path}: {what}', line))
      continue
    existing += 1
    attrs = dict(zip(columns, cells[1:]))
    missing = [columns[f] for f, v in attrs.items() if not v]
    if missing:
      skipped.append(Skipped(cells[0], 'missing_value', f'empty {", ".join(missing)}', line))
      continue
    broken = [columns[f] for f, v in attrs.items() if '\n' in v or '\r' in v]
    if broken:
      skipped.append(Skipped(cells[0], 'bad_value', f'line break in {", ".join(broken)}',
                             line))
      continue
    candidates.append(_Candidate(_rel(path, source), path, attrs, line))
  if not existing:
    examples = ', '.join(repr(r[0]) for _, r in data_rows[:3])
    raise CatalogError(
        f'None of the {len(data_rows)} values in the first column {header[0]!r} of {csv_path} '
        f'is a file under {source} (e.g. {examples}). The first column must hold image paths '
        'relative to --source; check --source and the column order.')

  warnings, unreadable = [], []
  unlisted = [_rel(os.path.join(d, f), source)
              for d, _, fs in _walk(source, data_dir, unreadable) for f in fs
              if images.is_image_name(f) and os.path.join(d, f) not in listed]
  if unlisted:
    warnings.append(f'{len(unlisted)} image files under --source are not in the CSV and '
                    f'were not used (e.g. {", ".join(unlisted[:3])})')
  if unreadable:
    warnings.append(f'{len(unreadable)} folders under --source cannot be listed (e.g. '
                    f'{", ".join(u.path for u in unreadable[:3])}: {unreadable[0].detail}); '
                    'CSV rows pointing into them are reported as missing files')
  return candidates, skipped, warnings, columns


# ----------------------------------------------------------------------------- decoding


def _png(array: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format='PNG')
  return buffer.getvalue()


def _decode_all(candidates: Sequence[_Candidate], resolution: int, fit: str, background,
                log: Callable[[str], None]) -> Tuple[List[_Example], List[Skipped], int]:
  """Decodes, validates, de-duplicates and fits every candidate (first copy wins)."""
  matte = images.matte_for(background)
  examples, skipped, upscaled = [], [], 0
  by_bytes, by_pixels = {}, {}
  for i, c in enumerate(candidates):
    if i and i % 500 == 0:
      log(f'  decoded {i}/{len(candidates)} images')
    try:
      data = images.read_bytes(c.abs_path)
      digest = hashlib.sha256(data).digest()
      first = by_bytes.get(digest)
      if first is None:
        image = images.decode_image(data, matte, draft_size=3 * resolution)
        pixels = hashlib.sha256(repr(image.size).encode() + image.tobytes()).digest()
        first = by_pixels.get(pixels)
        what = 'same decoded pixels as'
      else:
        what = 'same bytes as'
      if first is not None:
        differ = [f'{k} {first.attrs[k]!r} vs {v!r}' for k, v in c.attrs.items()
                  if first.attrs[k] != v]
        detail = f'{what} {first.path}' + (f' (labels differ: {"; ".join(differ)})'
                                           if differ else '')
        skipped.append(Skipped(c.path, 'duplicate', detail, c.row))
        continue
      side = max(image.size) if fit == 'pad' else min(image.size)
      upscaled += side < resolution
      example = _Example(c.path, c.attrs,
                         _png(images.fit_image(image, resolution, fit, background)))
    except images.ImageError as e:
      reason, detail = e.reason, e.detail
      if reason == 'not_an_image' and images.is_image_name(c.path):
        reason, detail = 'corrupt', f'named like an image but {detail}'
      skipped.append(Skipped(c.path, reason, detail, c.row))
      continue
    by_bytes[digest] = by_pixels[pixels] = example
    examples.append(example)
  return examples, skipped, upscaled


# ----------------------------------------------------------------------------- splitting


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


# ----------------------------------------------------------------------------- writing


def _features(resolution: int, vocabulary: Dict[str, List[str]], columns: Dict[str, str]):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  spec = {'image': tfds.features.Image(shape=(resolution, resolution, 3),
                                       encoding_format='png',
                                       doc='Product photo, fitted to a square.')}
  for feature, names in vocabulary.items():
    spec[feature] = tfds.features.ClassLabel(names=names, doc=f'From {columns[feature]}.')
  return tfds.features.FeaturesDict(spec)


def _write_tfds(version_dir: str, name: str, features, splits: Dict[str, List[dict]],
                description: str) -> None:
  """Writes TFRecord shards + TFDS metadata, then re-reads them as a check."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  os.makedirs(version_dir)
  split_infos = []
  for split, rows in splits.items():
    records = [features.serialize_example(r) for r in rows]
    total = sum(len(r) for r in records)
    num_shards = max(1, min(len(records), math.ceil(total / _SHARD_BYTES)))
    bounds = np.linspace(0, len(records), num_shards + 1).astype(int)
    template = tfds.core.ShardedFileTemplate(
        data_dir=tfds.core.Path(version_dir), template=tfds.core.naming.DEFAULT_FILENAME_TEMPLATE,
        dataset_name=name, split=split, filetype_suffix='tfrecord')
    for path, lo, hi in zip(template.sharded_filepaths(num_shards), bounds[:-1], bounds[1:]):
      with tf.io.TFRecordWriter(os.fspath(path)) as writer:
        for record in records[lo:hi]:
          writer.write(record)
    split_infos.append(tfds.core.SplitInfo(
        name=split, shard_lengths=[int(b) for b in np.diff(bounds)], num_bytes=total,
        filename_template=template))
  tfds.folder_dataset.write_metadata(data_dir=version_dir, features=features,
                                     split_infos=split_infos, version=VERSION,
                                     check_data=False, description=description)
  builder = tfds.builder_from_directory(version_dir)
  for split, rows in splits.items():
    if builder.info.splits[split].num_examples != len(rows):
      raise RuntimeError(f'{split} split re-read with {builder.info.splits[split].num_examples}'
                         f' examples, {len(rows)} written.')
  first = next(iter(builder.as_dataset(
      split='train[:1]', read_config=tfds.ReadConfig(try_autocache=False))))
  if tuple(first['image'].shape) != features['image'].shape:
    raise RuntimeError(f'image re-read with shape {first["image"].shape}.')


def _clean_stale(data_dir: str, name: str) -> None:
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
      os.rename(os.path.join(path, name), final)  # Killed between the renames of _install.
    shutil.rmtree(path, ignore_errors=True)


def _install(built: str, final: str, data_dir: str, name: str) -> None:
  """Moves the finished dataset into place; the old one goes only once the new one is in."""
  old = None
  if os.path.lexists(final):
    old = tempfile.mkdtemp(prefix=f'.{name}.old-{os.getpid()}-', dir=data_dir)
    os.rename(final, os.path.join(old, name))
  os.rename(built, final)
  if old:
    shutil.rmtree(old, ignore_errors=True)


# ----------------------------------------------------------------------------- build


def build_catalog(source: str, data_dir: str, csv: Optional[str] = None,
                  name: str = 'catalog', resolution: int = 64, holdout: float = 0.1,
                  fit: str = 'pad', seed: int = 0, background=images.WHITE,
                  log: Optional[Callable[[str], None]] = None) -> BuildReport:
  """Builds DATA_DIR/NAME as a TFDS dataset from the photos in `source` (see module doc).

  Args:
    source: folder of photos (one subfolder per category unless `csv` is given).
    data_dir: TFDS data_dir to write into (created if missing).
    csv: optional CSV: header row; image path relative to `source`, then attributes.
    name: dataset name for tfds.builder / tfds.load (lower_snake_case).
    resolution: output side in pixels, a power of two >= 8.
    holdout: fraction of images for the `test` split, in [0, 1).
    fit: 'pad' (whole product, padded with `background`) or 'crop' (centre square).
    seed: seed of the split and of the example order.
    background: padding colour, (r, g, b) / '#rrggbb' / 'white' / 'auto' (border median).
    log: optional progress callback (the CLI prints to stderr).

  Returns:
    BuildReport (also written to report_path). Raises CatalogError, writing nothing, when
    the arguments or the CSV are unusable or no image is usable.
  """
  log = log or (lambda message: None)
  try:
    resolution = images.check_resolution(resolution)
    images.FIT.get(fit)
    background = images.parse_background(background)
  except ValueError as e:
    raise CatalogError(str(e)) from None
  holdout = _check_holdout(holdout)
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
    raise CatalogError(f'--seed must be an integer >= 0; got {seed!r}.')
  name = _check_name(name)
  source = os.path.abspath(os.path.expanduser(os.fspath(source)))
  _check_source(source)
  data_dir = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
  _check_output(data_dir, name)

  if csv is not None:
    csv = os.path.abspath(os.path.expanduser(os.fspath(csv)))
    if not os.path.isfile(csv):
      raise CatalogError(f'--csv {csv} is not a file.')
    candidates, skipped, warnings, columns = _scan_csv(source, csv, data_dir)
    layout = 'csv'
  else:
    candidates, skipped, warnings = _scan_folders(source, data_dir)
    columns, layout = {CATEGORY: 'the category folder names'}, 'folders'
  num_files = len(candidates) + len(skipped)
  log(f'Decoding {len(candidates)} images from {source} ...')
  examples, bad, upscaled = _decode_all(candidates, resolution, fit, background, log)
  skipped += bad
  if not examples:
    reasons = collections.Counter(s.reason for s in skipped)
    listing = '\n'.join(f'  {s.path}: {s.reason} ({s.detail})' for s in skipped[:20])
    raise CatalogError(
        f'No usable image among {num_files} files/rows in {source} '
        f'({", ".join(f"{r}: {n}" for r, n in sorted(reasons.items())) or "no files"}). '
        f'Nothing was written.\n{listing}')

  vocabulary = {f: sorted({e.attrs[f] for e in examples}) for f in columns}
  if layout == 'folders':
    empty = sorted(set(_category_folders(source, data_dir)) - set(vocabulary[CATEGORY]))
    if empty:
      warnings.append(f'category folders without a usable image (not in the vocabulary): '
                      f'{", ".join(empty)}')
  for f, names in vocabulary.items():
    if len(names) > 20 and len(names) > 0.5 * len(examples):
      warnings.append(f'{columns[f]!r} has {len(names)} distinct values for {len(examples)} '
                      'images: an ID column rather than an attribute? Remove it from the CSV.')
  stratum = CATEGORY if CATEGORY in vocabulary else next(iter(vocabulary))
  assigned = assign_splits([e.attrs[stratum] for e in examples], holdout, seed)
  index = {f: {v: i for i, v in enumerate(names)} for f, names in vocabulary.items()}
  rng = np.random.default_rng(seed + 1)
  split_of = {}
  splits = {}
  for split in SPLITS:
    members = [e for e, s in zip(examples, assigned) if s == split]
    if not members:
      continue
    members = [members[i] for i in rng.permutation(len(members))]  # Mixed file order.
    split_of.update({e.path: split for e in members})
    splits[split] = [dict({'image': e.png}, **{f: index[f][e.attrs[f]] for f in vocabulary})
                     for e in members]
  if 'test' not in splits:
    warnings.append('the dataset has no test split (' + (
        '--holdout 0' if holdout == 0 else 'too few images per category to hold one out')
                    + '): evaluation on split "test" will fail')
  counts = {f: {v: {s: 0 for s in splits} for v in names} for f, names in vocabulary.items()}
  for e in examples:
    for f in vocabulary:
      counts[f][e.attrs[f]][split_of[e.path]] += 1

  final = os.path.join(data_dir, name)
  report = BuildReport(
      name=name, path=final, report_path=os.path.join(final, REPORT_FILENAME),
      data_dir=data_dir, source=source, csv=csv, layout=layout, resolution=resolution,
      fit=fit, background=background, holdout=holdout, seed=int(seed),
      vocabulary=vocabulary, columns=columns,
      split_sizes={s: len(rows) for s, rows in splits.items()}, counts=counts,
      skipped=skipped, num_files=num_files, upscaled=upscaled, warnings=warnings,
      examples=[dict(path=e.path, split=split_of[e.path], **e.attrs) for e in examples])
  try:
    with destinations.writing(data_dir, 'the dataset into'):
      _write_catalog(report, data_dir, name, resolution, vocabulary, columns, splits, log)
  except OutputError as e:
    raise CatalogError(f'{e} Nothing was installed.') from None
  return report


def _write_catalog(report: BuildReport, data_dir: str, name: str, resolution: int,
                   vocabulary: Dict[str, List[str]], columns: Dict[str, str],
                   splits: Dict[str, List[dict]], log: Callable[[str], None]) -> None:
  """Writes the dataset into a temporary folder of data_dir, then moves it into place."""
  os.makedirs(data_dir, exist_ok=True)
  _clean_stale(data_dir, name)
  final = report.path
  description = (f'Product catalogue built by {BUILDER_ID} from {report.source}'
                 f'{f" and {report.csv}" if report.csv else ""}: {report.num_images} images, '
                 f'{resolution}x{resolution} RGB (fit={report.fit}); ClassLabel attributes: '
                 f'{", ".join(vocabulary)}.')
  work = tempfile.mkdtemp(prefix=f'.{name}.building-{os.getpid()}-', dir=data_dir)
  try:
    built = os.path.join(work, name)
    log(f'Writing {report.num_images} examples ...')
    _write_tfds(os.path.join(built, VERSION), name,
                _features(resolution, vocabulary, columns), splits, description)
    with open(os.path.join(built, REPORT_FILENAME), 'w') as f:
      json.dump(report.to_dict(), f, indent=1)
    _install(built, final, data_dir, name)
  finally:
    shutil.rmtree(work, ignore_errors=True)


# ----------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
  parser = flag_style.ArgumentParser(
      prog='python -m gan.data.catalog',
      description='Turn your own product photos into a TFDS dataset for productgan.')
  commands = parser.add_subparsers(dest='command', required=True)
  build = commands.add_parser(
      'build', help='build DATA_DIR/NAME from a folder of photos',
      description=__doc__.split('\n\n')[1],
      formatter_class=argparse.RawDescriptionHelpFormatter)
  build.add_argument('--source', required=True,
                     help='folder of photos: one subfolder per category, or any layout with --csv')
  build.add_argument('--csv', help='CSV with a header: image path relative to --source, '
                     'then one column per attribute')
  build.add_argument('--data-dir', required=True, help='TFDS data_dir to write into')
  build.add_argument('--name', default='catalog', help='dataset name (default: catalog)')
  build.add_argument('--resolution', type=int, default=64,
                     help='output size, a power of two >= 8 (default: 64)')
  build.add_argument('--holdout', type=float, default=0.1,
                     help='fraction held out as the test split, in [0, 1) (default: 0.1)')
  build.add_argument('--fit', default='pad', choices=images.FIT.names(),
                     help='pad: whole product on a square background; crop: centre square')
  build.add_argument('--background', default='white',
                     help='padding colour: white (default), auto (border median), #rrggbb, r,g,b')
  build.add_argument('--seed', type=int, default=0, help='split / order seed (default: 0)')
  quiet.add_flag(build)
  return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
  """CLI entry point; returns the exit status (0 built, 1 nothing built)."""
  args = _parser().parse_args(argv)
  log = lambda message: print(message, file=sys.stderr, flush=True)
  try:
    with quiet.logs(args.verbosity):
      report = build_catalog(
          args.source, args.data_dir, csv=args.csv, name=args.name, resolution=args.resolution,
          holdout=args.holdout, fit=args.fit, seed=args.seed, background=args.background,
          log=log)
  except CatalogError as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  print(report.summary())
  return 0


if __name__ == '__main__':
  sys.exit(main())
