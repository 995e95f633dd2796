"""Bring your own catalogue: a folder of product photos -> a TFDS dataset the trainer reads.

Layouts:

  folders:  SOURCE/handbag/a.jpg, SOURCE/shoe/b.png, ...  -> ClassLabel feature `category`
            (the first folder level under SOURCE; deeper folders belong to that category).
  CSV:      any files under SOURCE plus --csv FILE with a header row; the first column is
            the image path relative to SOURCE, every other column is an attribute and
            becomes one ClassLabel feature (lower_snake_case of the header; vocabulary =
            sorted values of the images kept). Empty cells are missing values.
  CSV of ids (e.g. Kaggle "Fashion Product Images"): --csv styles.csv --id-column id
            --path-template 'images/{id}.jpg' --attributes articleType,baseColour,usage

    python -m gan.data.catalog build --source photos/ --data-dir ~/tfds --name my_shop \
        [--csv photos/labels.csv [--id-column C] [--path-template T] [--attributes A,B]] \
        [--resolution 64] [--holdout 0.1] [--fit pad|crop] [--seed 0] \
        [--min-count N [--drop-rare]] [--workers N] [--max-pixels N] [--max-aspect R]

The result loads by name in any process, without importing this module:

    tfds.builder('my_shop', data_dir='~/tfds')          # features: image uint8 [R, R, 3]
    tfds.load('my_shop', data_dir='~/tfds', split='train')  # + one ClassLabel per attribute

Splits are `train` and `test` (the held-out fraction, stratified by `category`, or by the
first attribute column when there is no `category`). `--holdout 0` writes no `test` split.
--min-count N folds values seen in fewer than N kept images into `other` (or, with
--drop-rare, skips their images); the summary and the report name those values.

Every file is decoded and validated (gan.data.images) on all cores (--workers), streaming:
memory does not grow with the pixels of the catalogue, only with a few dozen bytes of
bookkeeping per image. Photos over --max-pixels (decompression bombs) or more elongated than
--max-aspect are refused from their header, before decoding. Bad input never stops the build
and is never dropped silently: it is skipped and listed with its reason in
DATA_DIR/NAME/build_report.json, and counted in the printed summary. The dataset is written
into a hidden temporary folder in DATA_DIR and moved into place only after it is complete and
re-read, so a failed, interrupted (Ctrl-C) or killed build never leaves a half dataset where
TFDS looks, a rerun starts clean, and a rebuild replaces the old one only on success. Errors
that would build nothing (no usable image, bad CSV header, bad arguments) raise CatalogError /
exit 1 and write nothing.
"""
import argparse
import collections
import json
import os
import shutil
import signal
import sys
import threading
import time
from typing import Callable, Optional, Sequence

import numpy as np

from gan import destinations, flag_style, quiet
from gan.data import images
from gan.data.catalog_checks import (check_holdout, check_limit, check_name, check_output,
                                     check_positive_int, check_source, first_missing,
                                     remove_created)
from gan.data.catalog_csv import scan_csv
from gan.data.catalog_decode import (DEFAULT_MAX_ASPECT, DEFAULT_MAX_PIXELS, Settings, Staged,
                                     decode_all, default_workers, workers_for)
from gan.data.catalog_labels import (RARE_POLICIES, assign_splits, case_variants, first_rare,
                                     fold, rare_values, vocabulary)
from gan.data.catalog_progress import Progress
from gan.data.catalog_report import (BUILDER_ID, OTHER, REPORT_FILENAME, SKIP_REASONS,
                                     BuildReport, CatalogError, Skipped, printable)
from gan.data.catalog_scan import CATEGORY, category_folders, label_text, scan_folders
from gan.data.catalog_write import VERSION, clean_stale, features_dict, install, work_folder
from gan.data.catalog_write import write_tfds as _write_tfds  # A module global: tests wrap it.
from gan.errors import OutputError

SPLITS = ('train', 'test')
EXIT_INTERRUPTED = 130  # What shells report for Ctrl-C.

__all__ = ['BUILDER_ID', 'BuildReport', 'CATEGORY', 'CatalogError', 'REPORT_FILENAME',
           'SKIP_REASONS', 'SPLITS', 'Skipped', 'VERSION', 'assign_splits', 'build_catalog',
           'main']


def build_catalog(source: str, data_dir: str, csv: Optional[str] = None,
                  name: str = 'catalog', resolution: int = 64, holdout: float = 0.1,
                  fit: str = 'pad', seed: int = 0, background=images.WHITE,
                  log: Optional[Callable[[str], None]] = None, *,
                  id_column: Optional[str] = None, path_template: Optional[str] = None,
                  attributes: Optional[Sequence[str]] = None, csv_encoding: str = 'utf-8',
                  min_count: int = 1, rare: str = OTHER, workers: Optional[int] = None,
                  max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
                  max_aspect: Optional[float] = DEFAULT_MAX_ASPECT,
                  progress: Optional[Callable[[str], None]] = None,
                  progress_interval: float = 1.0) -> BuildReport:
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
    log: optional callback for the build's few status lines (the CLI prints to stderr).
    id_column, path_template, attributes, csv_encoding: how the CSV names images and which
      columns become features (gan.data.catalog_csv).
    min_count, rare: values seen in fewer than min_count kept images become OTHER
      (rare='other') or their images are skipped (rare='drop').
    workers: decoding processes (default: every core); 1 decodes in this process. Workers
      are spawned, so a script calling this must do so under `if __name__ == '__main__':`.
    max_pixels, max_aspect: header checks against bombs and strips (None: no limit).
    progress: optional callback for progress-bar lines, every `progress_interval` seconds.

  Returns:
    BuildReport (also written to report_path). Raises CatalogError, writing nothing, when
    the arguments or the CSV are unusable or no image is usable.
  """
  start = time.monotonic()
  log = log or (lambda message: None)
  try:
    resolution = images.check_resolution(resolution)
    images.FIT.get(fit)
    background = images.parse_background(background)
  except ValueError as e:
    raise CatalogError(str(e)) from None
  holdout = check_holdout(holdout)
  seed = check_positive_int(seed, '--seed', 0)
  min_count = check_positive_int(min_count, '--min-count')
  workers = check_positive_int(default_workers() if workers is None else workers, '--workers')
  if rare not in RARE_POLICIES:
    raise CatalogError(f'rare must be one of {RARE_POLICIES}; got {rare!r}.')
  settings = Settings(resolution, fit, background,
                      check_limit(max_pixels, '--max-pixels', 1),
                      check_limit(max_aspect, '--max-aspect', 1.0))
  name = check_name(name)
  source = os.path.abspath(os.path.expanduser(os.fspath(source)))
  check_source(source)
  data_dir = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
  check_output(data_dir, name)

  if csv is not None:
    csv = os.path.abspath(os.path.expanduser(os.fspath(csv)))
    if not os.path.isfile(csv):
      raise CatalogError(f'--csv {csv} is not a file.')
    candidates, skipped, warnings, columns = scan_csv(
        source, csv, data_dir, id_column, path_template, attributes, csv_encoding)
    layout = 'csv'
  else:
    if id_column or path_template or attributes:
      raise CatalogError('--id-column, --path-template and --attributes describe a CSV: '
                         'pass --csv too.')
    candidates, skipped, warnings = scan_folders(source, data_dir)
    columns, layout = {CATEGORY: 'the category folder names'}, 'folders'
  report = BuildReport(
      name=name, path=os.path.join(data_dir, name),
      report_path=os.path.join(data_dir, name, REPORT_FILENAME), data_dir=data_dir,
      source=source, csv=csv, layout=layout, resolution=resolution, fit=fit,
      background=background, holdout=holdout, seed=int(seed), vocabulary={}, columns=columns,
      split_sizes={}, counts={}, skipped=skipped, num_files=len(candidates) + len(skipped),
      upscaled=0, warnings=warnings, examples=[], min_count=min_count, rare_policy=rare,
      limits={'max_pixels': settings.max_pixels, 'max_aspect': settings.max_aspect},
      workers=workers)
  created = first_missing(data_dir)
  try:
    with destinations.writing(data_dir, 'the dataset into'):
      os.makedirs(data_dir, exist_ok=True)
      clean_stale(data_dir, name)
      work = work_folder(data_dir, name)
      try:
        _build_in(work, report, candidates, settings, log, progress, progress_interval)
      finally:
        shutil.rmtree(work, ignore_errors=True)
  except OutputError as e:
    raise CatalogError(f'{e} Nothing was installed.') from None
  except CatalogError:
    if created:
      remove_created(data_dir, created)
    raise
  report.seconds = round(time.monotonic() - start, 2)
  return report


def _build_in(work: str, report: BuildReport, candidates, settings: Settings,
              log: Callable[[str], None], progress: Optional[Callable[[str], None]],
              interval: float) -> None:
  """Decodes into `work`, writes the dataset there, then installs it (fills in `report`)."""
  features = list(report.columns)
  report.workers = workers_for(len(candidates), report.workers)
  log(f'Decoding {len(candidates)} images from {report.source} on {report.workers} '
      f'process{"es" if report.workers > 1 else ""} ...')
  bar = Progress('decoding', len(candidates), progress, interval)
  staged = Staged(os.path.join(work, 'staged.bin'))
  try:
    decoded = decode_all(candidates, report.source, settings, staged, features,
                         report.workers, bar.update)
    bar.close()
    report.skipped += decoded.skipped
    report.upscaled = decoded.upscaled
    kept = decoded.kept
    if not kept:
      _nothing_usable(report)
    values = [candidates[i].values for i in kept]
    positions = np.arange(len(kept))
    rare = rare_values(values, features, report.min_count)
    report.rare = rare
    rare_list = [rare[f] for f in features]
    if report.rare_policy == OTHER:
      if any(rare_list) and any(OTHER in {v[j] for v in values} for j in range(len(features))):
        report.warnings.append(f'a value named {OTHER!r} was already in the data: the rare '
                               'values are counted with it')
      values = [fold(v, rare_list) for v in values]
    elif any(rare_list):
      keep = []
      for k, (i, v) in enumerate(zip(kept, values)):
        hit = first_rare(v, features, rare_list)
        if hit:
          c = candidates[i]
          report.skipped.append(Skipped(
              c.path, 'rare_value', f'{report.columns[hit[0]]} {hit[1]!r} is in {hit[2]} '
              f'image(s), fewer than --min-count {report.min_count}', c.row))
        else:
          keep.append(k)
      if not keep:
        raise CatalogError(f'Every image has a value seen fewer than --min-count '
                           f'{report.min_count} times: nothing is left. Lower --min-count.')
      positions = np.asarray(keep)
      kept = [kept[k] for k in keep]
      values = [values[k] for k in keep]
    assigned = _label_and_split(report, candidates, kept, values, features)
    ids = _label_ids(values, report.vocabulary, features)
    split_ranks = _split_order(assigned, report.split_sizes, report.seed)
    description = (f'Product catalogue built by {BUILDER_ID} from {report.source}'
                   f'{f" and {report.csv}" if report.csv else ""}: {report.num_images} images, '
                   f'{report.resolution}x{report.resolution} RGB (fit={report.fit}); '
                   f'ClassLabel attributes: {", ".join(report.vocabulary)}.')
    built = os.path.join(work, report.name)
    log(f'Writing {report.num_images} examples ...')
    spec = features_dict(report.resolution, report.vocabulary, report.columns)  # Loads TF.
    bar = Progress('writing', report.num_images, progress, interval)
    _write_tfds(os.path.join(built, VERSION), report.name, spec, split_ranks, positions, staged,
                ids, features, description, bar.update)
    bar.close()
  finally:
    staged.close()
  with open(os.path.join(built, REPORT_FILENAME), 'w') as f:
    json.dump(report.to_dict(), f, indent=1)
  install(built, report.path, report.data_dir, report.name)


def _nothing_usable(report: BuildReport):
  reasons = collections.Counter(s.reason for s in report.skipped)
  listing = '\n'.join(f'  {s.path}: {s.reason} ({s.detail})' for s in report.skipped[:20])
  raise CatalogError(
      f'No usable image among {report.num_files} files/rows in {report.source} '
      f'({", ".join(f"{r}: {n}" for r, n in sorted(reasons.items())) or "no files"}). '
      f'Nothing was written.\n{listing}')


def _label_and_split(report: BuildReport, candidates, kept, values, features) -> list:
  """Vocabulary, warnings, counts and the examples list; returns the split of each image."""
  vocab = vocabulary(values, features)
  report.vocabulary = vocab
  if report.layout == 'folders':
    folders = {label_text(d) for d in category_folders(report.source, report.data_dir)}
    empty = sorted(folders - set(vocab[CATEGORY]) - {OTHER})
    if empty:
      report.warnings.append(f'category folders without a usable image (not in the '
                             f'vocabulary): {", ".join(printable(e) for e in empty)}')
  for f, names in vocab.items():
    if len(names) > 20 and len(names) > 0.5 * len(values):
      report.warnings.append(
          f'{report.columns[f]!r} has {len(names)} distinct values for {len(values)} images: '
          'an ID column rather than an attribute? Leave it out (--attributes).')
  report.warnings += case_variants(vocab)
  stratum = features.index(CATEGORY) if CATEGORY in features else 0
  assigned = assign_splits([v[stratum] for v in values], report.holdout, report.seed)
  sizes = collections.Counter(assigned)
  report.split_sizes = {s: sizes[s] for s in SPLITS if sizes[s]}
  if 'test' not in report.split_sizes:
    report.warnings.append('the dataset has no test split (' + (
        '--holdout 0' if report.holdout == 0 else
        'too few images per category to hold one out')
                           + '): evaluation on split "test" will fail')
  counts = {f: {v: {s: 0 for s in report.split_sizes} for v in names}
            for f, names in vocab.items()}
  for v, split in zip(values, assigned):
    for f, value in zip(features, v):
      counts[f][value][split] += 1
  report.counts = counts
  report.examples = [dict(path=printable(candidates[i].path), split=split,
                          **dict(zip(features, v)))
                     for i, v, split in zip(kept, values, assigned)]
  return assigned


def _label_ids(values, vocab, features) -> np.ndarray:
  index = [{v: i for i, v in enumerate(vocab[f])} for f in features]
  ids = np.zeros((len(values), len(features)), np.int32)
  for k, v in enumerate(values):
    ids[k] = [index[j][x] for j, x in enumerate(v)]
  return ids


def _split_order(assigned, split_sizes, seed: int) -> dict:
  """split -> ranks of its images, in a seeded random order (not grouped by file or label)."""
  assigned = np.asarray(assigned)
  rng = np.random.default_rng(seed + 1)
  out = {}
  for split in split_sizes:
    ranks = np.flatnonzero(assigned == split)
    out[split] = ranks[rng.permutation(len(ranks))]
  return out


# ----------------------------------------------------------------------------- CLI


def _attribute_list(text: str):
  names = [a.strip() for a in text.split(',') if a.strip()]
  if not names:
    raise argparse.ArgumentTypeError('give one or more CSV column names, comma-separated')
  return names


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
  build.add_argument('--id-column', help='CSV column naming the image (default: the first); '
                     'with --path-template it holds an id')
  build.add_argument('--path-template',
                     help="image path made from the id, e.g. 'images/{id}.jpg' (default '{id}')")
  build.add_argument('--attributes', type=_attribute_list,
                     help='CSV columns to condition on, comma-separated (default: all but the '
                     'image column), e.g. articleType,baseColour,usage')
  build.add_argument('--csv-encoding', default='utf-8',
                     help='text encoding of the CSV (default utf-8; e.g. cp1252 for old Windows '
                     'exports)')
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
  build.add_argument('--min-count', type=int, default=1,
                     help=f'values in fewer images than this become {OTHER!r} (default 1: none)')
  build.add_argument('--drop-rare', action='store_true',
                     help=f'skip the images of rare values instead of relabelling them {OTHER!r}')
  build.add_argument('--workers', type=int, default=None,
                     help='decoding processes (default: every core)')
  build.add_argument('--max-pixels', type=int, default=DEFAULT_MAX_PIXELS,
                     help='refuse images with more pixels, from their header (decompression '
                     f'bombs; default {DEFAULT_MAX_PIXELS:,}; 0: no limit)')
  build.add_argument('--max-aspect', type=float, default=DEFAULT_MAX_ASPECT,
                     help='refuse images whose long side is more than this times the short one '
                     f'(default {DEFAULT_MAX_ASPECT:g}; 0: no limit)')
  quiet.add_flag(build)
  return parser


def _stderr_progress():
  """Progress lines for stderr: redrawn in place on a terminal, one every 10 s in a log file."""
  tty = sys.stderr.isatty()

  def write(text: str) -> None:
    print(('\r' + text) if tty else text, end='' if tty else '\n', file=sys.stderr, flush=True)
    if tty and '] 100% ' in text:
      print(file=sys.stderr)
  return write, (0.5 if tty else 10.0)


def _terminate(signum, frame):
  del signum, frame
  raise KeyboardInterrupt('terminated')


def main(argv: Optional[Sequence[str]] = None) -> int:
  """CLI entry point; returns the exit status (0 built, 1 nothing built, 130 interrupted)."""
  args = _parser().parse_args(argv)
  log = lambda message: print(message, file=sys.stderr, flush=True)
  progress, interval = _stderr_progress()
  main_thread = threading.current_thread() is threading.main_thread()
  previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None  # As Ctrl-C.
  try:
    with quiet.logs(args.verbosity):
      report = build_catalog(
          args.source, args.data_dir, csv=args.csv, name=args.name, resolution=args.resolution,
          holdout=args.holdout, fit=args.fit, seed=args.seed, background=args.background,
          log=log, id_column=args.id_column, path_template=args.path_template,
          attributes=args.attributes, csv_encoding=args.csv_encoding,
          min_count=args.min_count, rare='drop' if args.drop_rare else OTHER,
          workers=args.workers, max_pixels=args.max_pixels, max_aspect=args.max_aspect,
          progress=progress, progress_interval=interval)
  except CatalogError as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    print('\ninterrupted: nothing was installed, and a dataset built before is unchanged; '
          'run the same command again to build from the start.', file=sys.stderr)
    return EXIT_INTERRUPTED
  finally:
    if previous is not None:
      signal.signal(signal.SIGTERM, previous)
  print(report.summary())
  return 0


if __name__ == '__main__':
  sys.exit(main())
