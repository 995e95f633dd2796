"""Load a trained run from its workdir: config, attribute vocabulary, networks and GANState.

The control tools never need the dataset: everything they use is in the workdir
(config.json, vocabulary.json, label_distribution.json, checkpoints/ and, once evaluation has
picked one, best_checkpoint/).
"""
import dataclasses
import functools
from typing import Any, Optional, Tuple, Union

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan import checkpoint as checkpoint_lib
from gan import optim, rundir, state as state_lib
from gan.data import label_prior as label_prior_lib
from gan.data.vocab import Vocabulary
from gan.models import build_models
from gan.sampler import EmaSampler

CheckpointChoice = Union[str, int]


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
    return int(self.generator.latent_dim)  # The model interface (gan/models/interface.py).

  @property
  def resolution(self) -> int:
    return int(self.generator.resolution)

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
  def sampler(self) -> EmaSampler:
    """The run's EMA sampler; the checkpoint already holds its standing statistics."""
    return EmaSampler(self.config, self.num_classes, self.generator)

  def generate(self, z, labels) -> jnp.ndarray:
    """EMA generator, eval mode: z [n, d], int labels [n, A] -> images [n, H, W, 3] in [-1, 1]."""
    return self.sampler.generate(self.state, z, labels)


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
  config = rundir.load_config(workdir)
  vocabulary = Vocabulary.load(workdir)
  if not config.model.conditional:
    vocabulary = Vocabulary.from_dict({})
  num_classes = vocabulary.num_classes
  generator, discriminator = build_models(config, num_classes)
  template = state_template(config, generator, discriminator, num_classes)

  regular, best = rundir.CHECKPOINTS, rundir.BEST_CHECKPOINT
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
  try:  # read_only: damaged steps are skipped, never moved (training may be running beside us).
    state, restored_step = checkpointer.restore(template, step)
  finally:
    checkpointer.close()
  if state is None:
    raise FileNotFoundError(f'No checkpoints in {checkpointer.directory}: train first '
                            '(python -m gan.main --workdir=...).')
  state = jax.device_put(state)  # Once, rather than a host-to-device copy per sampling call.
  return Run(workdir, config, vocabulary, generator, discriminator, state, int(restored_step), kind)

