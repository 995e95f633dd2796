"""The run directory (`--workdir`): every name in it defined once, and how its files are written.

A workdir holds:

  config.json               the run's config (gan.main writes it; every tool reads it: `load_config`)
  vocabulary.json           attribute names and values (gan.data.vocab)
  label_distribution.json   the training split's attribute combinations (gan.data.label_prior)
  train.lock                one trainer per workdir (gan.workdir.WorkdirLock)
  checkpoints/<step>/       periodic Orbax checkpoints (gan.checkpoint.Checkpointer)
  checkpoints_damaged/      damaged checkpoints moved aside by training (never deleted)
  best_checkpoint/<step>/   the best checkpoint by an evaluation metric (gan.best_checkpoint)
  best_checkpoint.json      its step and metrics
  eval_classifier/          evaluation's cached judge and real features (gan.evaluation.reference)
  eval_<step>.json          gan.evaluate's report
  samples/<grid>_<step>.png sample grids written during training
  events.out.tfevents.*     TensorBoard summaries

Every file is written with `atomic_write` (a temporary file in the same folder, then a rename), so
a reader or a killed process never sees half a file; paths go through tf.io.gfile, so a workdir
can be a local folder or a gs:// bucket alike.
"""
import json
import os
import uuid
from typing import Any, Callable, TypeVar

import ml_collections

CONFIG = 'config.json'
VOCABULARY = 'vocabulary.json'
LABEL_DISTRIBUTION = 'label_distribution.json'
LOCK = 'train.lock'
CHECKPOINTS = 'checkpoints'
BEST_CHECKPOINT = 'best_checkpoint'
BEST_CHECKPOINT_INFO = 'best_checkpoint.json'
EVAL_CLASSIFIER = 'eval_classifier'
SAMPLES = 'samples'

T = TypeVar('T')


def is_remote(path: str) -> bool:
  return '://' in path


def join(workdir: str, *names: str) -> str:
  """A path inside the workdir (absolute for local workdirs, so Orbax accepts it)."""
  base = workdir if is_remote(workdir) else os.path.abspath(workdir)
  return os.path.join(base, *names)


def sample_grid_path(workdir: str, grid: str, step: int) -> str:
  return join(workdir, SAMPLES, f'{grid}_{step:07d}.png')


def eval_report_path(workdir: str, step: int) -> str:
  return join(workdir, f'eval_{step}.json')


def atomic_write(path: str, data: Any) -> str:
  """Writes `data` (str or bytes) to `path` whole or not at all; creates the folder. Returns path.

  The temporary name is unique, so two writers of one file never write into each other's
  temporary; the last rename wins.
  """
  import tensorflow as tf  # gfile: local paths and gs:// alike; imported on first use (fast CLIs).
  folder = os.path.dirname(path)
  if folder:
    tf.io.gfile.makedirs(folder)
  tmp = os.path.join(folder, f'.{os.path.basename(path)}.{uuid.uuid4().hex[:8]}.tmp')
  try:
    with tf.io.gfile.GFile(tmp, 'wb' if isinstance(data, bytes) else 'w') as f:
      f.write(data)
    tf.io.gfile.rename(tmp, path, overwrite=True)
  except BaseException:
    if tf.io.gfile.exists(tmp):
      tf.io.gfile.remove(tmp)
    raise
  return path


def write_json(path: str, payload, indent: int = 2, sort_keys: bool = False) -> str:
  return atomic_write(path, json.dumps(payload, indent=indent, sort_keys=sort_keys) + '\n')


def read_run_file(workdir: str, name: str, parse: Callable[[str], T], fix: str) -> T:
  """Parses workdir/name; a missing file or a damaged one is an error that says what to do.

  fix: how to recover from a damaged file (one sentence).
  """
  import tensorflow as tf
  path = os.path.join(workdir, name)
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f'No {name} in {workdir!r}: is it the workdir of a productgan training '
                            'run (python -m gan.main --workdir=...)?')
  with tf.io.gfile.GFile(path) as f:
    text = f.read()
  try:
    return parse(text)
  except (ValueError, KeyError, TypeError) as e:
    raise ValueError(f'The run file {path} is damaged ({e}). {fix}') from e


def _tuples(value):
  """JSON lists back to tuples (configs use tuples for sequences)."""
  if isinstance(value, dict):
    return {k: _tuples(v) for k, v in value.items()}
  if isinstance(value, list):
    return tuple(_tuples(v) for v in value)
  return value


def _merge(base: dict, override: dict) -> dict:
  out = dict(base)
  for key, value in override.items():
    if isinstance(value, dict) and isinstance(out.get(key), dict):
      out[key] = _merge(out[key], value)
    else:
      out[key] = value
  return out


def _json_object(text: str) -> dict:
  value = json.loads(text)
  if not isinstance(value, dict):
    raise ValueError('not a JSON object')
  return value


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a run was trained with (workdir/config.json).

  Fields missing from an older run's file take today's defaults; JSON lists become tuples again
  (placeholders that were unset come back as None, which is what the code expects of them).
  """
  from configs import default as default_config
  saved = read_run_file(workdir, CONFIG, _json_object,
                        'Copy config.json from a backup of this run, or train a new one.')
  return ml_collections.ConfigDict(_merge(default_config.get_config().to_dict(), _tuples(saved)))


def save_config(workdir: str, config: ml_collections.ConfigDict) -> str:
  return atomic_write(join(workdir, CONFIG), config.to_json_best_effort(indent=2))
