"""Checks of a build's arguments and destination, done before any image is decoded."""
import json
import os
import re

import numpy as np

from gan import destinations
from gan.data.catalog_report import BUILDER_ID, REPORT_FILENAME, CatalogError
from gan.errors import OutputError

_NAME_RE = re.compile(r'^[a-z][a-z0-9_]*$')


def check_name(name: str) -> str:
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


def check_holdout(holdout) -> float:
  if (isinstance(holdout, bool) or not isinstance(holdout, (int, float, np.floating))
      or not 0.0 <= holdout < 1.0):
    raise CatalogError(
        f'--holdout must be a fraction in [0, 1) (e.g. 0.1 keeps 10% of the images for the '
        f'test split; 0 writes no test split); got {holdout!r}.')
  return float(holdout)


def check_source(source: str) -> None:
  if not os.path.isdir(source):
    raise CatalogError(f'--source {source} is not a folder.')
  try:
    os.listdir(source)
  except OSError as e:
    raise CatalogError(f'--source {source} cannot be read ({e.strerror or e}). Check its '
                       'permissions, or copy the photos somewhere readable.') from None


def check_output(data_dir: str, name: str) -> None:
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


def check_positive_int(value, flag: str, minimum: int = 1) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
    raise CatalogError(f'{flag} must be an integer >= {minimum}; got {value!r}.')
  return int(value)


def check_limit(value, flag: str, minimum: float):
  """An optional limit (None or 0: no limit) that must be a number >= minimum."""
  if value is None or value == 0:
    return None
  if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or value < minimum:
    raise CatalogError(f'{flag} must be a number >= {minimum} (or 0 for no limit); '
                       f'got {value!r}.')
  return value


def remove_created(data_dir: str, first_missing: str) -> None:
  """Removes the folders a failed build created on the way to data_dir, if they stayed empty."""
  path = data_dir
  while True:
    try:
      os.rmdir(path)
    except OSError:
      return
    if path == first_missing:
      return
    path = os.path.dirname(path)


def first_missing(path: str) -> str:
  """The outermost folder of `path` that does not exist yet ('' if it all exists)."""
  missing = ''
  while path and not os.path.exists(path):
    missing, parent = path, os.path.dirname(path)
    if parent == path:
      break
    path = parent
  return missing
