"""The model side of the studio: one loaded run, every call at a compiled shape, one call at a time.

Why fixed shapes: a jitted function compiles once per input shape, and a compilation costs seconds
where a call costs milliseconds. So every batch is padded up to one of a few sizes (BUCKETS) and
`warm_up` compiles each of them before the server says it is ready; JAX's persistent compilation
cache (gan/studio/compile_cache.py) makes the next start skip most of that work.

Why one lock: the server answers requests on several threads. The model calls are serialised (a
first-come first-served lock), so they never compete for the CPU cores or for memory, and a long
photo inversion yields the lock between its chunks, so a slider still moves while it runs.

Products are named, not stored: (seed, index, truncation, attribute labels) gives the same image
every time (latent `index` of `seed` is the `index`-th image of `python -m gan.sample --seed`).
"""
import dataclasses
import functools
import threading
import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from gan import steps
from gan.control import generation, inversion, latents as latents_lib, output
from gan.control.loading import Run
from gan.studio import tuning

BUCKETS = (1, 16, 64)        # Batch sizes compiled at start-up; a request pads up to the next one.
MAX_COUNT = 64               # Products per "generate".
MAX_SEED = 2 ** 31 - 1
MAX_INDEX = 2 ** 20          # Latent index within a seed's stream.
MAX_TRUNCATION = 4.0         # 0 = no truncation.
DEFAULT_TRUNCATION = 0.7
MAX_FRAMES = 16              # Interpolation frames (one compiled batch).
SLIDER_RANGE = 3.0           # SeFa strengths in [-3, 3] latent standard deviations.
ANY = 'any'


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _seed_latents(seed, num: int, latent_dim: int, truncated: bool, truncation, start):
  """latents.seed_latents as one compiled program (bit for bit the same latents, ~10x faster
  than its op-by-op run): seed, truncation and start are arguments, so one compilation serves
  every request of a batch size."""
  base = jax.random.PRNGKey(seed)
  keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(start + jnp.arange(num))
  if truncated:
    return jax.vmap(lambda k: jax.random.truncated_normal(k, -truncation, truncation,
                                                          (latent_dim,)))(keys)
  return jax.vmap(lambda k: jax.random.normal(k, (latent_dim,)))(keys)


class InputError(ValueError):
  """A request the model cannot serve as asked; the message says what is valid."""


class FairLock:
  """A first-come first-served lock. `yield_` lets everyone who is waiting go first (a long job
  calls it between its steps, so short requests are not starved)."""

  def __init__(self):
    self._cond = threading.Condition()
    self._next_ticket = 0
    self._serving = 0

  def acquire(self):
    with self._cond:
      ticket = self._next_ticket
      self._next_ticket += 1
      while ticket != self._serving:
        self._cond.wait()

  def release(self):
    with self._cond:
      self._serving += 1
      self._cond.notify_all()

  def yield_(self):
    self.release()
    self.acquire()

  def __enter__(self):
    self.acquire()
    return self

  def __exit__(self, *exc):
    self.release()


@dataclasses.dataclass(frozen=True)
class Product:
  """One generated product: latent `index` of `seed` (truncated at `truncation`, 0 = none) with
  attribute labels `labels` (value indices; num_classes[a] = unspecified)."""
  seed: int
  index: int
  truncation: float
  labels: Tuple[int, ...]


def bucket_for(n: int, buckets: Sequence[int] = BUCKETS) -> int:
  """The smallest compiled batch size that holds n (the largest one for bigger n: chunked)."""
  return next((b for b in buckets if b >= n), buckets[-1])


def check_range(name: str, value, low, high):
  if not low <= value <= high:
    raise InputError(f'{name} must be between {low} and {high}; got {value}.')
  return value


class Engine:
  """A trained run behind a lock, with bucketed and pre-compiled model calls."""

  def __init__(self, run: Run, inversion_config: Optional[inversion.InversionConfig] = None,
               sliders: int = 6, buckets: Sequence[int] = BUCKETS, chunk_steps: int = 5,
               tuning_file: Optional[str] = None):
    """tuning_file: where the generator implementation chosen per batch size is remembered
    (tuning.Choices); None: measured at every warm-up."""
    self.run = run
    self.vocabulary = run.vocabulary
    self.buckets = tuple(sorted(buckets))
    if self.buckets[0] != 1 or self.buckets[-1] < MAX_FRAMES:
      raise ValueError(f'buckets must include 1 and one of at least {MAX_FRAMES} (the '
                       f'interpolation frames); got {buckets}.')
    self._lock = FairLock()
    self.directions, self.eigenvalues = generation.directions(run, min(sliders, run.latent_dim))
    # Per batch size, the generator's fastest forward on this machine (tuning.py, at warm-up).
    self._samplers: Dict[int, Callable] = {}
    self._default_sampler = steps.make_sample_fn(run.generator)
    self.implementations: Dict[int, dict] = {}
    self._choices = tuning.Choices(tuning_file)
    # Interpolation mixes the two products' attribute embeddings (inversion.soft_generate), with
    # the generator warm_up picks for its batch size (read when it is first traced).
    self._soft_run = run
    self._soft = jax.jit(
        lambda g_vars, z, probs: inversion.soft_generate(self._soft_run, z, probs, g_vars))
    self.inversion_config = inversion_config or inversion.InversionConfig()
    self.inverter = inversion.Inverter(
        run, self.inversion_config, chunks=max(1, self.inversion_config.steps // chunk_steps))
    self.warm_up_seconds: Optional[float] = None

  # ---- Requests -> model inputs (InputError with the valid choices) ----

  def assignments(self, attributes: Optional[Mapping[str, str]]) -> Dict[str, str]:
    """{'colour': 'Red', 'pattern': 'any'} -> {'colour': 'red'}: canonical names, 'any' dropped."""
    out = {}
    for attribute, value in dict(attributes or {}).items():
      if not self.vocabulary.names:
        raise InputError('This model is not conditioned on attributes; send no attributes.')
      try:
        name = self.vocabulary.resolve_attribute(str(attribute))
        if str(value).strip().lower() in (ANY, ''):
          continue
        values = self.vocabulary.values(name)
        out[name] = values[self.vocabulary.value_index(name, str(value).strip())]
      except ValueError as e:
        raise InputError(f'{e} (or "{ANY}")' if 'Valid values' in str(e) else str(e)) from e
    return out

  def labels(self, attributes: Optional[Mapping[str, str]]) -> np.ndarray:
    """Attribute names -> int32 label vector; an attribute left out or 'any' is unspecified."""
    return self.vocabulary.encode(self.assignments(attributes))

  def product(self, seed: int, index: int, truncation: float,
              attributes: Optional[Mapping[str, str]]) -> Product:
    check_range('seed', seed, 0, MAX_SEED)
    check_range('index', index, 0, MAX_INDEX)
    check_range('truncation', truncation, 0.0, MAX_TRUNCATION)
    return Product(int(seed), int(index), float(truncation), tuple(int(v) for v in
                                                                    self.labels(attributes)))

  def describe(self, product: Product) -> dict:
    return {'seed': product.seed, 'index': product.index, 'truncation': product.truncation,
            'attributes': self.vocabulary.decode(product.labels)}

  # ---- Model calls ----

  def _latents(self, seed: int, num: int, truncation: float, start: int = 0) -> np.ndarray:
    """Latents start..start+num-1 of `seed`, drawn at a bucket size (one compiled shape)."""
    if num > self.buckets[-1]:
      return latents_lib.seed_latents(seed, num, self.run.latent_dim, truncation or None, start)
    z = _seed_latents(seed, bucket_for(num, self.buckets), self.run.latent_dim, truncation > 0,
                      np.float32(truncation), start)
    return np.asarray(z)[:num]

  def _generate(self, z, labels) -> np.ndarray:
    """uint8 [n, H, W, 3], padded to a bucket (chunks of the largest one beyond it)."""
    n = len(z)
    bucket = bucket_for(n, self.buckets)
    sample = self._samplers.get(bucket, self._default_sampler)
    z, labels = np.asarray(z, np.float32), np.asarray(labels, np.int32).reshape(n, -1)
    state, out = self.run.state, []
    for start in range(0, n, bucket):
      zb, yb = z[start:start + bucket], labels[start:start + bucket]
      count = len(zb)
      if count < bucket:  # Padding: zero latents, repeated labels; cut off below.
        zb = np.concatenate([zb, np.zeros((bucket - count,) + zb.shape[1:], np.float32)])
        yb = np.concatenate([yb, np.repeat(yb[:1], bucket - count, axis=0)])
      out.append(np.asarray(sample(state.ema_params, state.ema_batch_stats, zb, yb))[:count])
    return output.as_uint8(np.concatenate(out))

  def generate(self, attributes: Optional[Mapping[str, str]], seed: int, count: int,
               truncation: float) -> Tuple[np.ndarray, List[Product]]:
    """`count` products of `seed` with the given attributes ('any' ones drawn as the catalogue has
    them, as gan.sample does): (uint8 images, products)."""
    check_range('count', count, 1, MAX_COUNT)
    check_range('seed', seed, 0, MAX_SEED)
    check_range('truncation', truncation, 0.0, MAX_TRUNCATION)
    assignments = self.assignments(attributes)
    with self._lock:
      z = self._latents(seed, count, truncation)
      labels = generation.make_labels(self.run, assignments, count, seed)
      images = self._generate(z, labels)
    return images, [Product(int(seed), i, float(truncation), tuple(int(v) for v in labels[i]))
                    for i in range(count)]

  def _product_latent(self, product: Product) -> np.ndarray:
    return self._latents(product.seed, 1, product.truncation, product.index)[0]

  def sweep(self, product: Product, attribute: str) -> Tuple[np.ndarray, List[Product]]:
    """The product in every value of `attribute`: (uint8 images, products)."""
    if not self.vocabulary.names:
      raise InputError('This model is not conditioned on attributes: there is nothing to sweep.')
    try:
      a = self.vocabulary.index_of(attribute)
    except ValueError as e:
      raise InputError(str(e)) from e
    n = self.vocabulary.num_classes[a]
    labels = np.tile(np.asarray(product.labels, np.int32), (n, 1))
    labels[:, a] = np.arange(n)
    with self._lock:
      z = np.repeat(self._product_latent(product)[None], n, axis=0)
      images = self._generate(z, labels)
    return images, [dataclasses.replace(product, labels=tuple(int(v) for v in row))
                    for row in labels]

  def edit(self, product: Product, strengths: Sequence[float]) -> np.ndarray:
    """The product moved along the SeFa directions (strongest first) by `strengths`: uint8 image."""
    k = len(self.directions)
    if len(strengths) > k:
      raise InputError(f'strengths has {len(strengths)} values; this studio has {k} edit '
                       f'directions, so give at most {k}.')
    for i, s in enumerate(strengths):
      check_range(f'strengths[{i}]', s, -SLIDER_RANGE, SLIDER_RANGE)
    strengths = np.pad(np.asarray(strengths, np.float32), (0, k - len(strengths)))
    with self._lock:
      z = self._product_latent(product) + strengths @ self.directions
      return self._generate(z[None], np.asarray(product.labels, np.int32)[None])[0]

  def render(self, product: Product) -> np.ndarray:
    return self.edit(product, ())

  def interpolate(self, start: Product, end: Product, frames: int = 8) -> np.ndarray:
    """`frames` images from `start` to `end`: latents by slerp, attribute embeddings mixed
    linearly (the generator is linear in them). uint8 [frames, H, W, 3]."""
    check_range('frames', frames, 2, MAX_FRAMES)
    bucket = bucket_for(MAX_FRAMES, self.buckets)
    with self._lock:
      z = latents_lib.interpolation_path(self._product_latent(start), self._product_latent(end),
                                         frames)
      z = np.concatenate([z, np.zeros((bucket - frames, z.shape[1]), np.float32)])
      t = np.concatenate([np.linspace(0.0, 1.0, frames), np.zeros(bucket - frames)])[:, None]
      sizes = self.vocabulary.num_classes
      if any(l >= k for l, k in zip(start.labels + end.labels, sizes + sizes)):
        # An unspecified label has no value embedding to mix: keep the start's labels.
        return self._generate(z, np.tile(np.asarray(start.labels, np.int32), (bucket, 1)))[:frames]
      probs = [jnp.asarray((1 - t) * np.eye(k)[a] + t * np.eye(k)[b], jnp.float32)
               for a, b, k in zip(start.labels, end.labels, sizes)]
      images = self._soft(self.run.g_variables, jnp.asarray(z), probs)
      return output.as_uint8(np.asarray(images)[:frames])

  def invert(self, photo: np.ndarray, known: Optional[Mapping[str, str]] = None,
             progress: Optional[Callable[[float], None]] = None) -> inversion.InversionResult:
    """Inverts a photo (uint8 [R, R, 3]); gives the lock to waiting requests between chunks."""
    known = self.assignments(known)

    def between_chunks(fraction):
      self._lock.yield_()
      if progress is not None:
        progress(fraction)

    with self._lock:
      return self.inverter(photo, known, between_chunks)

  def variants(self, result: inversion.InversionResult, attributes: Optional[Mapping[str, str]],
               sweep: Optional[str] = None) -> Tuple[np.ndarray, List[Dict[str, str]]]:
    """An inverted photo with some attributes changed ('any' keeps the found value), and, with
    `sweep`, in every value of that attribute: (uint8 images, their attributes)."""
    labels = np.array(result.labels, np.int32)
    for name, value in self.assignments(attributes).items():
      labels[self.vocabulary.index_of(name)] = self.vocabulary.value_index(name, value)
    rows = labels[None]
    if sweep:
      try:
        a = self.vocabulary.index_of(sweep)
      except ValueError as e:
        raise InputError(str(e)) from e
      rows = np.tile(labels, (self.vocabulary.num_classes[a], 1))
      rows[:, a] = np.arange(len(rows))
    with self._lock:
      images = self._generate(np.repeat(result.z[None], len(rows), axis=0), rows)
    return images, [self.vocabulary.decode(row) for row in rows]

  # ---- Start-up ----

  def warm_up(self) -> float:
    """Compiles every program the studio calls (each bucket, interpolation, inversion), so the
    first request is as fast as the next. Returns the seconds it took."""
    start = time.perf_counter()
    modules = tuning.candidates(self.run.generator)
    for bucket in self.buckets:
      with self._lock:
        z = self._latents(0, bucket, DEFAULT_TRUNCATION)
        labels = generation.make_labels(self.run, {}, bucket, 0)
        key = tuning.Choices.key(self.run.config, bucket)
        name = self._choices.get(key)
        sample = name and tuning.checked(self.run.generator, self.run.g_variables, z, labels, name)
        if sample:
          self.implementations[bucket] = {'chosen': name, 'ms': None, 'remembered': True}
        else:
          name, sample, seconds = tuning.fastest(self.run.generator, self.run.g_variables, z,
                                                 labels)
          self._choices.put(key, name)
          self.implementations[bucket] = {
              'chosen': name, 'remembered': False,
              'ms': {k: None if v is None else round(1000 * v, 1) for k, v in seconds.items()}}
        self._samplers[bucket] = sample
    self._soft_run = dataclasses.replace(
        self.run, generator=modules[self.implementations[bucket_for(MAX_FRAMES, self.buckets)]
                                    ['chosen']])
    for bucket in self.buckets:
      for truncation in (DEFAULT_TRUNCATION, 0.0):  # Truncated and plain draws: other ops.
        self.generate({}, 0, bucket, truncation)
    unspecified = self.product(0, 0, 0.0, {})  # Untruncated latents: their own random ops.
    self.render(unspecified)
    filled = self.generate({}, 1, 1, DEFAULT_TRUNCATION)[1][0]
    self.interpolate(filled, filled)  # Mixed attribute embeddings...
    self.interpolate(unspecified, filled)  # ... and the unspecified-label path.
    with self._lock:
      self.inverter.warm_up()
    self.warm_up_seconds = time.perf_counter() - start
    return self.warm_up_seconds

  def info(self) -> dict:
    run = self.run
    return {
        'workdir': run.workdir, 'step': run.step, 'checkpoint': run.checkpoint,
        'resolution': run.resolution, 'latent_dim': run.latent_dim,
        'attributes': [{'name': n, 'values': list(v)} for n, v in self.vocabulary.attributes],
        'count': {'min': 1, 'max': MAX_COUNT, 'default': 16},
        'seed': {'min': 0, 'max': MAX_SEED},
        'truncation': {'min': 0.0, 'max': MAX_TRUNCATION, 'default': DEFAULT_TRUNCATION,
                       'note': '0 = no truncation'},
        'directions': [{'index': i, 'eigenvalue': float(e)} for i, e in
                       enumerate(self.eigenvalues)],
        'slider_range': SLIDER_RANGE, 'frames': {'min': 2, 'max': MAX_FRAMES, 'default': 8},
        'buckets': list(self.buckets),
        'implementations': {str(b): v for b, v in self.implementations.items()},
        'inversion': {'steps': self.inversion_config.steps,
                      'restarts': self.inversion_config.restarts},
        'warm_up_seconds': self.warm_up_seconds,
    }
