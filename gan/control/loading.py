"""Load a trained run from its workdir: config, attribute vocabulary, networks and GANState.

The control tools never need the dataset: everything they use is in the workdir
(config.json, vocabulary.json, label_distribution.json, checkpoints/ and, once evaluation has
picked one, best_checkpoint/).
"""
import dataclasses
import functools
import json
import os
from typing import Any, Optional, Tuple, Union

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from configs import default as default_config
from gan import checkpoint as checkpoint_lib
from gan import optim, state as state_lib, steps
from gan.data import label_prior as label_prior_lib
from gan.data.vocab import Vocabulary
from gan.models import build_models

CONFIG_FILENAME = 'config.json'
CheckpointChoice = Union[str, int]


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


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a run was trained with (workdir/config.json).

  Fields missing from an older run's file take today's defaults; JSON lists become tuples again
  (placeholders that were unset come back as None, which is what the code expects of them).
  """
  import tensorflow as tf  # Imported on first use: a mistyped flag fails in 2 s, not 10.
  path = os.path.join(workdir, CONFIG_FILENAME)
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f'No {CONFIG_FILENAME} in {workdir!r}: is it the workdir of a '
                            'productgan training run (python -m gan.main --workdir=...)?')
  with tf.io.gfile.GFile(path) as f:
    try:
      saved = json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f'The run config {path} is damaged ({e}).') from e
  merged = _merge(default_config.get_config().to_dict(), _tuples(saved))
  return ml_collections.ConfigDict(merged)


@dataclasses.dataclass
class Run:
  """A trained run, ready to sample from. All sampling uses the EMA generator in eval mode."""
  workdir: str
  config: ml_collections.ConfigDict
  vocabulary: Vocabulary          # Empty for an unconditional model.
  generator: Any
  discriminator: Any
  state: state_lib.GANState
  step: int
  checkpoint: str                 # Where the state came from: 'best' or 'latest' (or 'step').

  @property
  def latent_dim(self) -> int:
    return int(self.config.model.latent_dim)

  @property
  def resolution(self) -> int:
    return int(self.config.data.resolution)

  @property
  def num_classes(self) -> Tuple[int, ...]:
    return self.vocabulary.num_classes

  @property
  def g_variables(self):
    return {'params': self.state.ema_params, 'batch_stats': self.state.ema_batch_stats}

  @property
  def d_variables(self):
    return {'params': self.state.d_params, 'batch_stats': self.state.d_batch_stats}

  @functools.cached_property
  def label_prior(self) -> Optional[label_prior_lib.LabelPrior]:
    """The training split's attribute distribution saved with the run (None if it has none)."""
    if not self.vocabulary.names:
      return None
    return label_prior_lib.load(self.workdir, self.vocabulary.names, self.num_classes)

  @functools.cached_property
  def _sample(self):
    return steps.make_sample_fn(self.generator)

  def generate(self, z, labels) -> jnp.ndarray:
    """EMA generator, eval mode: z [n, d], int labels [n, A] -> images [n, H, W, 3] in [-1, 1]."""
    z = jnp.asarray(z, jnp.float32)
    labels = jnp.asarray(labels, jnp.int32).reshape(z.shape[0], len(self.num_classes))
    return self._sample(self.state.ema_params, self.state.ema_batch_stats, z, labels)


def _has_checkpoints(workdir: str, subdir: str) -> bool:
  import tensorflow as tf
  directory = checkpoint_lib.checkpoint_dir(workdir, subdir)
  return tf.io.gfile.isdir(directory) and bool(tf.io.gfile.listdir(directory))


def _steps_in(workdir: str, subdir: str):
  if not _has_checkpoints(workdir, subdir):
    return []
  return checkpoint_lib.Checkpointer(workdir, read_only=True, subdir=subdir).steps()


def parse_checkpoint(choice: CheckpointChoice) -> CheckpointChoice:
  """'best' | 'latest' | a step number (int or digits) -> 'best' | 'latest' | int."""
  if isinstance(choice, (int, np.integer)) and not isinstance(choice, bool):
    return int(choice)
  text = str(choice).strip().lower()
  if text in ('best', 'latest'):
    return text
  if text.isdigit():
    return int(text)
  raise ValueError(f'--checkpoint must be best, latest or a step number; got {choice!r}.')


def state_template(config, generator, discriminator, num_classes):
  """A restore template for the run's GANState: host zeros of the right shapes and dtypes.

  Shapes come from jax.eval_shape (nothing is initialised or compiled). Host numpy arrays restore
  whatever topology wrote the checkpoint (8 devices, a TPU slice); sampling needs one device only.
  """
  (g_tx, _), (d_tx, _) = optim.build_optimizers(config)
  shapes = jax.eval_shape(lambda: state_lib.create_state(config, generator, discriminator, g_tx,
                                                         d_tx, num_classes, config.seed))
  return jax.tree_util.tree_map(lambda x: np.zeros(x.shape, x.dtype), shapes)


def load_run(workdir: str, checkpoint: CheckpointChoice = 'best') -> Run:
  """Restores a run for sampling.

  checkpoint: 'best' (the best-by-FID checkpoint when the run has one, else the latest),
  'latest', or a step number (looked up among the periodic and the best checkpoints).
  """
  choice = parse_checkpoint(checkpoint)
  config = load_config(workdir)
  vocabulary = Vocabulary.load(workdir)
  if not config.model.conditional:
    vocabulary = Vocabulary.from_dict({})
  num_classes = vocabulary.num_classes
  generator, discriminator = build_models(config, num_classes)
  template = state_template(config, generator, discriminator, num_classes)

  regular, best = checkpoint_lib.CHECKPOINT_DIR, checkpoint_lib.BEST_CHECKPOINT_DIR
  if choice == 'best':
    subdir, step, kind = (best, None, 'best') if _has_checkpoints(workdir, best) \
        else (regular, None, 'latest')
  elif choice == 'latest':
    subdir, step, kind = regular, None, 'latest'
  else:
    in_regular, in_best = _steps_in(workdir, regular), _steps_in(workdir, best)
    if choice not in in_regular and choice not in in_best:
      raise ValueError(f'No checkpoint for step {choice} in {workdir!r}; available steps: '
                       f'{sorted(set(in_regular) | set(in_best)) or "none"}.')
    subdir, step, kind = (regular if choice in in_regular else best), choice, 'step'
  if not _has_checkpoints(workdir, subdir):
    raise FileNotFoundError(f'No checkpoints in {checkpoint_lib.checkpoint_dir(workdir, subdir)}: '
                            'train first (python -m gan.main --workdir=...).')
  checkpointer = checkpoint_lib.Checkpointer(workdir, read_only=True, subdir=subdir)
  try:
    state, restored_step = _restore_read_only(checkpointer, template, step)
  finally:
    checkpointer.close()
  state = jax.device_put(state)  # Once, rather than a host-to-device copy per sampling call.
  return Run(workdir, config, vocabulary, generator, discriminator, state, int(restored_step), kind)


def _restore_read_only(checkpointer, template, step):
  """Restores `step`, or the newest readable checkpoint, touching nothing on disk.

  Checkpointer.restore without a step moves damaged checkpoints aside (so training can rewrite
  them); a sampling tool, possibly running next to training, must not, so it asks for each step
  explicitly and only skips the damaged ones (a storage error that persists stops it instead).
  """
  if step is not None:
    return checkpointer.restore(template, step)
  steps = checkpointer.steps()
  errors = []
  for candidate in reversed(steps):
    try:
      return checkpointer.restore(template, candidate)
    except checkpoint_lib.CheckpointError as e:
      errors.append(f'step {candidate}: {str(e)[:300]}')
      logging.warning('Checkpoint at step %d in %s cannot be read (%s); trying an older one.',
                      candidate, checkpointer.directory, errors[-1])
  if not steps:
    raise FileNotFoundError(f'No checkpoints in {checkpointer.directory}: train first '
                            '(python -m gan.main --workdir=...).')
  raise checkpoint_lib.CheckpointError(
      f'Every checkpoint in {checkpointer.directory} (steps {steps}) is damaged or incomplete; '
      'nothing was changed on disk. Train again, or restore the folder from a backup.')
