"""Finding the photos of a catalogue folder: the walk, and the folder-per-category layout.

A candidate is only a path and its attribute values (no pixels): the list of them is the one
thing a build holds per image, so it is kept small (slots, a tuple of interned values).
"""
import errno
import os
import sys
import unicodedata
from typing import Iterator, List, Optional, Tuple

from gan.data.catalog_report import CatalogError, Skipped, has_bad_bytes

CATEGORY = 'category'


class Candidate:
  """One image to decode: `path` relative to the source ('/'-separated), its attribute values
  in the order of the build's features, and its CSV line (None for the folder layout)."""
  __slots__ = ('path', 'values', 'row')

  def __init__(self, path: str, values: Tuple[str, ...], row: Optional[int] = None):
    self.path = path
    self.values = tuple(sys.intern(v) for v in values)  # Few distinct values, many images.
    self.row = row


def rel(path: str, source: str) -> str:
  return os.path.relpath(path, source).replace(os.sep, '/')


def label_text(value: str) -> str:
  """An attribute value as a label: trimmed, one Unicode form (a Mac's NFD 'é' == NFC 'é')."""
  return unicodedata.normalize('NFC', value.strip())


def loops(path: str) -> bool:
  """Whether a link leads back to itself (ELOOP)."""
  try:
    os.stat(path)
  except OSError as e:
    return e.errno == errno.ELOOP
  return False


def walk(source: str, exclude: Optional[str] = None, skipped: Optional[List] = None
         ) -> Iterator[Tuple[str, List[str], List[str]]]:
  """Yields (dirpath, dirnames, filenames) sorted, following folder links once each.

  `exclude` (the output data_dir, when it lies inside the source) is not searched. Folders that
  cannot be listed and links that lead back to a folder already searched are appended to
  `skipped` (os.walk drops the first silently and loops on the second).
  """
  seen = {os.path.realpath(exclude)} if exclude else set()
  quiet = set(seen)
  report = skipped.append if skipped is not None else (lambda s: None)

  def on_error(error: OSError):
    path = rel(error.filename, source) + '/' if error.filename else source
    report(Skipped(path, 'unreadable_folder', error.strerror or str(error)))

  for dirpath, dirnames, filenames in os.walk(source, followlinks=True, onerror=on_error):
    real = os.path.realpath(dirpath)
    if real in seen:  # Reached twice through links: already searched.
      dirnames[:] = []
      continue
    seen.add(real)
    keep = []
    for d in sorted(dirnames):
      target = os.path.realpath(os.path.join(dirpath, d))
      if target in seen:
        if target not in quiet:
          report(Skipped(rel(os.path.join(dirpath, d), source) + '/', 'link_loop',
                         f'links to {rel(target, source)}/, which is searched already'))
      else:
        keep.append(d)
    dirnames[:] = keep
    files = []
    for f in sorted(filenames):
      path = os.path.join(dirpath, f)
      if os.path.islink(path) and loops(path):
        report(Skipped(rel(path, source), 'link_loop', 'a link that leads to itself'))
      else:
        files.append(f)
    yield dirpath, dirnames, files


def category_folders(source: str, data_dir: str) -> List[str]:
  out = os.path.realpath(data_dir)
  return [d for d in sorted(os.listdir(source))
          if os.path.isdir(os.path.join(source, d)) and not d.startswith('.')
          and os.path.realpath(os.path.join(source, d)) != out]


def scan_folders(source: str, data_dir: str
                 ) -> Tuple[List[Candidate], List[Skipped], List[str]]:
  """Folder-per-category layout -> candidates with the one attribute `category`."""
  if not category_folders(source, data_dir):
    raise CatalogError(
        f'No category folders in {source}. Put the photos in one folder per category '
        f'({source}/handbag/*.jpg, {source}/shoe/*.jpg, ...), or describe them with --csv.')
  candidates, skipped, warnings = [], [], []
  for dirpath, dirnames, filenames in walk(source, exclude=data_dir, skipped=skipped):
    for d in [d for d in dirnames if d.startswith('.')]:
      skipped.append(Skipped(rel(os.path.join(dirpath, d), source) + '/', 'hidden',
                             'hidden folder: not searched'))
    dirnames[:] = [d for d in dirnames if not d.startswith('.')]
    for filename in filenames:
      path = os.path.join(dirpath, filename)
      relative = rel(path, source)
      category = relative.split('/', 1)[0]
      if filename.startswith('.'):
        skipped.append(Skipped(relative, 'hidden', 'hidden file'))
      elif '/' not in relative:
        skipped.append(Skipped(relative, 'no_category', 'not inside a category folder'))
        if filename.lower().endswith('.csv'):
          warnings.append(f'{relative} is in --source: to use it as labels, pass --csv {path}')
      elif has_bad_bytes(category):
        skipped.append(Skipped(relative, 'bad_encoding', 'the category folder name is not '
                               'UTF-8 text, so it cannot be a label: rename the folder'))
      else:
        candidates.append(Candidate(relative, (label_text(category),)))
  return candidates, skipped, warnings
