"""Steering a trained generator: sample by attribute, sweep one attribute, interpolate, edit.

Every function takes a `Run` (gan/control/loading.py), works with the EMA generator in eval mode
and returns images as float32 numpy arrays in [-1, 1] (see output.py to save them).

Attributes are given by name, {'category': 'handbag', 'colour': 'red'}, and resolved through the
run's saved vocabulary (so an unknown name is an error listing the valid ones). An attribute left
out means "any", realised according to `any_mode`:
  'catalogue'    per image, values drawn as the training catalogue has them given the requested
                 ones (gan/data/label_prior.py): a navy shoe gets a pattern navy shoes have;
  'unspecified'  the model's own "unspecified" label, which it learned from attribute dropout;
  'random'       a uniformly random value per image;
  'auto'         'catalogue' when the run saved its label distribution (every run trained by this
                 version does), else 'unspecified' if it was trained with attribute dropout, else
                 'random'.
Random draws come from the seed, so a seed gives the same labels every time.
"""
import time
from typing import Dict, Mapping, Optional, Sequence, Tuple

import jax
import numpy as np

from gan.control import latents as latents_lib
from gan.control import sefa
from gan.control.loading import Run

ANY_MODES = ('auto', 'catalogue', 'unspecified', 'random')
_LABEL_STREAM = 0x1abe1  # Labels come from their own stream of the seed, not the latents'.


def resolve_any_mode(run: Run, any_mode: str = 'auto') -> str:
  if any_mode not in ANY_MODES:
    raise ValueError(f'Unknown any-mode {any_mode!r}. Valid: {", ".join(ANY_MODES)}.')
  if any_mode == 'auto':
    if run.label_prior is not None:
      return 'catalogue'
    return 'unspecified' if float(run.config.attribute_dropout) > 0 else 'random'
  if any_mode == 'catalogue' and run.vocabulary.names and run.label_prior is None:
    raise ValueError(f'--any=catalogue needs the label distribution of the training split, and '
                     f'{run.workdir!r} has none (runs trained before it was saved). Run '
                     f'`python -m gan.evaluate --workdir={run.workdir}` once to write it from the '
                     'dataset, or use --any=unspecified / --any=random.')
  return any_mode


def parse_attributes(run: Run, specs: Sequence[str]) -> Dict[str, str]:
  """['colour=red', ...] -> {'colour': 'red'} checked against the run's vocabulary."""
  if specs and not run.vocabulary.names:
    raise ValueError('This model is not conditioned on attributes, so --attr cannot be used.')
  return run.vocabulary.parse(list(specs or ()))


def make_labels(run: Run, assignments: Optional[Mapping[str, str]], num: int, seed: int = 0,
                any_mode: str = 'auto') -> np.ndarray:
  """int32 [num, A]: the given attributes, the others filled according to `any_mode`."""
  vocab = run.vocabulary
  base = vocab.encode(dict(assignments or {}))
  labels = np.tile(base, (num, 1)).astype(np.int32)
  mode = resolve_any_mode(run, any_mode)
  if mode == 'catalogue' and len(vocab):
    return run.label_prior.fill(labels, np.random.default_rng([seed, _LABEL_STREAM]))
  if mode == 'random' and len(vocab):
    key = jax.random.fold_in(jax.random.PRNGKey(seed), _LABEL_STREAM)
    for a, n in enumerate(vocab.num_classes):
      draws = np.asarray(jax.random.randint(jax.random.fold_in(key, a), (num,), 0, n))
      labels[:, a] = np.where(base[a] == n, draws, base[a])
  return labels


def generate(run: Run, z, labels, batch_size: int = 256) -> np.ndarray:
  """Images for latents [n, d] and labels [n, A], in batches: float32 [n, H, W, 3] in [-1, 1]."""
  return run.sampler.generate_batched(run.state, z, labels, batch_size)


def sample(run: Run, assignments: Optional[Mapping[str, str]] = None, num: int = 16, seed: int = 0,
           truncation: Optional[float] = None, any_mode: str = 'auto'
           ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """`num` images with the given attributes -> (images, z [num, d], labels [num, A])."""
  _check_count('num', num)
  z = latents_lib.seed_latents(seed, num, run.latent_dim, truncation)
  labels = make_labels(run, assignments, num, seed, any_mode)
  return generate(run, z, labels), z, labels


def sweep(run: Run, attribute: str, assignments: Optional[Mapping[str, str]] = None, num: int = 1,
          seed: int = 0, truncation: Optional[float] = None, any_mode: str = 'auto'
          ) -> Tuple[np.ndarray, Tuple[str, ...]]:
  """Same product, other values: for each of `num` fixed latents, one image per attribute value.

  Returns (images [num, V, H, W, 3], value names). Row r uses latent r of `seed` (and, in 'catalogue'
  and 'random' any-mode, the same drawn values of the other attributes) in every column: only the swept
  attribute changes along a row.
  """
  _check_count('num', num)
  vocab = run.vocabulary
  if not vocab.names:
    raise ValueError('This model is not conditioned on attributes: there is nothing to sweep.')
  name = vocab.resolve_attribute(attribute)
  assignments = dict(assignments or {})
  if any(vocab.resolve_attribute(a) == name for a in assignments):
    raise ValueError(f'--sweep {name} varies {name!r}; do not also fix it with --attr.')
  values = vocab.values(name)
  a = vocab.index_of(name)
  z = latents_lib.seed_latents(seed, num, run.latent_dim, truncation)
  labels = make_labels(run, assignments, num, seed, any_mode)
  z_all = np.repeat(z, len(values), axis=0)
  labels_all = np.repeat(labels, len(values), axis=0)
  labels_all[:, a] = np.tile(np.arange(len(values)), num)
  images = generate(run, z_all, labels_all)
  return images.reshape((num, len(values)) + images.shape[1:]), values


def interpolate(run: Run, seed_a: int, seed_b: int, frames: int = 8,
                assignments: Optional[Mapping[str, str]] = None,
                truncation: Optional[float] = None, any_mode: str = 'auto') -> np.ndarray:
  """Slerp from the first latent of seed_a to the first latent of seed_b: [frames, H, W, 3].

  The attributes stay fixed along the path (in 'catalogue' / 'random' any-mode: those drawn for
  seed_a).
  """
  z_a = latents_lib.seed_latents(seed_a, 1, run.latent_dim, truncation)[0]
  z_b = latents_lib.seed_latents(seed_b, 1, run.latent_dim, truncation)[0]
  z = latents_lib.interpolation_path(z_a, z_b, frames)
  labels = np.repeat(make_labels(run, assignments, 1, seed_a, any_mode), frames, axis=0)
  return generate(run, z, labels)


def directions(run: Run, k: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
  """SeFa directions of the run's EMA generator: ([k, d] orthonormal rows, eigenvalues [k])."""
  return sefa.sefa_directions(run.generator, run.g_variables, k)


def direction_previews(run: Run, k: int, strengths: Sequence[float], seed: int = 0,
                       assignments: Optional[Mapping[str, str]] = None,
                       truncation: Optional[float] = None, any_mode: str = 'auto'
                       ) -> Tuple[np.ndarray, np.ndarray]:
  """One strip per direction: the first latent of `seed` moved by each strength along it.

  Returns (images [k, len(strengths), H, W, 3], eigenvalues [k]).
  """
  dirs, eigenvalues = directions(run, k)
  z = latents_lib.seed_latents(seed, 1, run.latent_dim, truncation)[0]
  strengths = np.asarray(strengths, np.float32)
  z_all = z[None, None] + strengths[None, :, None] * dirs[:, None, :]
  labels = np.repeat(make_labels(run, assignments, 1, seed, any_mode), k * len(strengths), axis=0)
  images = generate(run, z_all.reshape(-1, run.latent_dim), labels)
  return images.reshape((k, len(strengths)) + images.shape[1:]), eigenvalues


def edit(run: Run, direction: int, strength: float, assignments: Optional[Mapping[str, str]] = None,
         num: int = 16, seed: int = 0, truncation: Optional[float] = None, any_mode: str = 'auto'
         ) -> Tuple[np.ndarray, np.ndarray]:
  """The `sample` images with SeFa direction `direction` (0 = strongest) applied at `strength`.

  Returns (edited images, the unedited images) so the two can be shown side by side.
  """
  _check_count('num', num)
  if not 0 <= direction < run.latent_dim:
    raise ValueError(f'--direction must be in [0, {run.latent_dim - 1}] (latent_dim='
                     f'{run.latent_dim}); got {direction}.')
  dirs, _ = directions(run, direction + 1)
  z = latents_lib.seed_latents(seed, num, run.latent_dim, truncation)
  labels = make_labels(run, assignments, num, seed, any_mode)
  edited = generate(run, sefa.apply_direction(z, dirs[direction], strength), labels)
  return edited, generate(run, z, labels)


def time_sampling(run: Run, num: int = 64, repeats: int = 5) -> Dict[str, float]:
  """Seconds to generate `num` images in one batch: the first call (with compilation) and the best
  of `repeats` calls after it (the steady-state number)."""
  z = latents_lib.seed_latents(0, num, run.latent_dim)
  labels = make_labels(run, {}, num, 0, 'unspecified')
  start = time.perf_counter()
  run.generate(z, labels).block_until_ready()
  first = time.perf_counter() - start
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    run.generate(z, labels).block_until_ready()
    times.append(time.perf_counter() - start)
  return {'num_images': num, 'first_call_s': first, 'seconds': min(times),
          'images_per_second': num / min(times)}


def _check_count(name: str, value: int) -> None:
  if int(value) < 1:
    raise ValueError(f'--{name} must be at least 1, got {value}.')
