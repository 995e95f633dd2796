"""The model interface: what every registered generator and discriminator provides.

The tools (sampling, sweeps, SeFa, inversion, sample grids, the evaluator, the benchmark) read a
model only through this contract, never through its parameter names, so a new architecture
works with all of them once it implements it. A model is registered in gan/models/__init__.py as
a factory (model config, resolution, num_classes, axis_name) -> module for G and one for D;
`build_models` checks the static part of the contract on what they build, so a module that lacks
a member fails before any work with an error naming what is missing.

Generator (a flax linen Module):
  latent_dim: int      length of z.
  resolution: int      side of the square images it makes.
  bn_momentum: float   running-average momentum of its BatchNorms; the tools clone it with 0 to
                       re-estimate standing statistics (a model without BatchNorm ignores it).
  __call__(z, labels, train) -> images [N, resolution, resolution, 3] in [-1, 1].
      z: float [N, latent_dim]. labels: int [N, A], value num_classes[a] meaning "unspecified";
      or soft labels: a tuple of A float arrays [N, num_classes[a]] of probabilities over each
      attribute's values, giving the probability-weighted mix of the value embeddings (inversion
      optimises these). BatchNorm statistics live in the 'batch_stats' collection.
  latent_weight(variables) -> float64 numpy [latent_dim, k]: every kernel part that multiplies z,
      stacked along outputs (SeFa's A^T, Shen & Zhou 2021), as the layers apply it (a spectrally
      normalised kernel divided by its sigma). variables: {'params', 'batch_stats'}, as G is
      applied with. A generator that feeds z (or chunks of it) to several layers stacks all of
      them, as SeFa does for BigGAN; rows of z a layer does not read are zero in its columns.

Discriminator (a flax linen Module):
  resolution: int      side of the images it judges.
  __call__(x, labels, train) -> logits [N], or (logits, class_logits) with one [N, num_classes[a]]
      array per attribute when it has AC-GAN heads.
  Attribute heads: parameters with a module on their path whose name contains ATTRIBUTE_HEADS
      ('classify') are the AC-GAN heads and what only they read (dcgan's own attribute network);
      the optimiser may give them their own learning rate (optim.aux_lr_scale).
  Named features: its own __call__ sows its feature maps, shallow to deep, as
      `self.sow('intermediates', 'features', h)` (FEATURES below; read with `d_features`). The
      inversion's feature loss compares them. Sowing costs nothing when the collection is not
      mutable (training, sampling).
"""
import dataclasses
from typing import List, Sequence

import jax
import numpy as np

INTERMEDIATES = 'intermediates'
FEATURES = 'features'
ATTRIBUTE_HEADS = 'classify'

GENERATOR_FIELDS = ('latent_dim', 'resolution', 'bn_momentum')
GENERATOR_METHODS = ('latent_weight',)
DISCRIMINATOR_FIELDS = ('resolution',)
DISCRIMINATOR_METHODS = ()

_SEE = 'See the contract in gan/models/interface.py.'


def _missing(module, fields: Sequence[str], methods: Sequence[str]) -> List[str]:
  names = {f.name for f in dataclasses.fields(module)} if dataclasses.is_dataclass(module) \
      else set()
  missing = [f'field {f!r}' for f in fields if f not in names]
  missing += [f'method {m}()' for m in methods if not callable(getattr(module, m, None))]
  return missing


def check_generator(module, name: str = '') -> None:
  """Raises TypeError naming every interface member the generator (module or class) lacks."""
  _check(module, 'generator', name, GENERATOR_FIELDS, GENERATOR_METHODS)


def check_discriminator(module, name: str = '') -> None:
  """Raises TypeError naming every interface member the discriminator (module or class) lacks."""
  _check(module, 'discriminator', name, DISCRIMINATOR_FIELDS, DISCRIMINATOR_METHODS)


def _check(module, kind, name, fields, methods):
  missing = _missing(module, fields, methods)
  if missing:
    cls = module if isinstance(module, type) else type(module)
    label = f'{kind} {name!r} ({cls.__name__})' if name else f'{kind} {cls.__name__}'
    raise TypeError(f'The {label} does not implement the model interface: missing '
                    f'{", ".join(missing)}. {_SEE}')


def check_built(generator, discriminator, latent_dim: int, resolution: int) -> None:
  """The built modules agree with the config (and each other) on latent_dim and resolution."""
  problems = []
  if int(generator.latent_dim) != int(latent_dim):
    problems.append(f'the generator takes z of length {generator.latent_dim}, the config says '
                    f'model.latent_dim={latent_dim}')
  for kind, module in (('generator', generator), ('discriminator', discriminator)):
    if int(module.resolution) != int(resolution):
      problems.append(f'the {kind} works at {module.resolution} px, the config says '
                      f'data.resolution={resolution}')
  if problems:
    raise ValueError(f'The model factories built mismatched models: {"; ".join(problems)}. '
                     f'{_SEE}')


def latent_weight(generator, g_variables) -> np.ndarray:
  """generator.latent_weight(g_variables), checked: float64 [latent_dim, k]."""
  weight = np.asarray(generator.latent_weight(g_variables), np.float64)
  d = int(generator.latent_dim)
  if weight.ndim != 2 or weight.shape[0] != d or weight.shape[1] < 1:
    raise ValueError(f'{type(generator).__name__}.latent_weight returned shape {weight.shape}; '
                     f'the interface needs [latent_dim={d}, k >= 1]. {_SEE}')
  return weight


def standing_stats_generator(generator):
  """The generator whose BatchNorm update in train mode is exactly the batch's statistics."""
  return generator.clone(bn_momentum=0.0)


def d_features(discriminator, variables, images, labels) -> List[jax.Array]:
  """The discriminator's named feature maps (eval mode), shallow to deep."""
  _, state = discriminator.apply(variables, images, labels, train=False,
                                 mutable=[INTERMEDIATES])
  features = state.get(INTERMEDIATES, {}).get(FEATURES)
  if not features:
    raise ValueError(f'The discriminator {type(discriminator).__name__} sows no feature maps: its '
                     f"__call__ must call self.sow('{INTERMEDIATES}', '{FEATURES}', h) for each "
                     f'block output. {_SEE}')
  return list(features)


def is_attribute_head(path) -> bool:
  """Whether a D parameter (its key path, as jax.tree_util gives it) belongs to the heads."""
  return any(ATTRIBUTE_HEADS in str(getattr(k, 'key', k)) for k in path)
