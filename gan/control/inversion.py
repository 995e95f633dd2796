"""GAN inversion: find the latent and attributes with which the generator reproduces a photo.

How (one batched optimisation, optax Adam):
- R restarts are optimised together as one batch: the parameters are latents z [R, d] and
  attribute logits [R, sum of values]. The loss is the sum of the R per-restart losses, so each
  restart follows its own gradient (Adam is element-wise), and the best restart wins at the end.
- Loss per restart: pixel MSE to the photo + feature loss (the discriminator's named feature maps,
  which every registered model sows under 'features' (gan/models/interface.py); each map's
  squared error is divided by the photo's mean squared activation so every map counts alike) + a
  small prior term keeping |z|^2 / d near 1, the shell where Gaussian latents live.
- Attributes, our choice: *soft attribute embeddings*. Each attribute's embedding is replaced by a
  softmax(logits)-weighted mix of the embeddings of its values: the model interface lets every
  generator take soft labels (per-attribute probabilities) in place of int labels. The generator is
  linear in the embedding at its first layer and in its conditional-BatchNorm scales/shifts
  (dcgan), so a mix is a meaningful in-between condition and gradients pick the best-fitting values
  for all attributes at once, instead of trying every combination. After `soft_fraction` of the steps each restart is
  hardened to its argmax values and the latent alone is fine-tuned for the remaining steps, so the
  result is an ordinary (z, labels) pair that `generate` reproduces exactly.
  Attributes the user knows (`known`) stay fixed one-hot throughout.
- Reported error: MSE on [0, 1] pixel values and PSNR = 10 log10(1 / MSE) dB, for the chosen
  restart, next to the best of the random starting latents (the "did it help" baseline).
"""
import dataclasses
from typing import Callable, Dict, List, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan.control import latents as latents_lib
from gan.control.loading import Run
from gan.models import interface


@dataclasses.dataclass
class InversionConfig:
  steps: int = 300               # Adam steps in all (soft-attribute phase + hard fine-tuning).
  restarts: int = 8              # Random starting latents, optimised together as one batch.
  learning_rate: float = 0.05
  pixel_weight: float = 1.0
  feature_weight: float = 1.0    # Discriminator-feature loss; 0 = pixels only.
  prior_weight: float = 0.01     # Keeps |z|^2 / d near 1.
  soft_fraction: float = 0.7     # Share of the steps with soft attributes (the rest: z only).
  truncation: Optional[float] = None  # Of the starting latents.
  seed: int = 0

  def validate(self):
    if self.steps < 1 or self.restarts < 1:
      raise ValueError(f'Inversion needs steps >= 1 and restarts >= 1; got steps={self.steps}, '
                       f'restarts={self.restarts}.')
    if not 0.0 <= self.soft_fraction <= 1.0:
      raise ValueError(f'soft_fraction must be in [0, 1], got {self.soft_fraction}.')
    if min(self.pixel_weight, self.feature_weight, self.prior_weight) < 0 or \
        self.pixel_weight + self.feature_weight <= 0:
      raise ValueError('Loss weights must be >= 0, and pixel_weight + feature_weight > 0.')
    latents_lib.check_truncation(self.truncation)


@dataclasses.dataclass
class InversionResult:
  z: np.ndarray                   # [latent_dim] the chosen restart's latent.
  labels: np.ndarray              # int32 [A] best-fitting attribute values.
  attributes: Dict[str, str]      # The same, by name.
  reconstruction: np.ndarray      # float32 [H, W, 3] in [-1, 1]: generate(z, labels).
  mse: float                      # On [0, 1] pixel values.
  psnr: float                     # dB.
  initial_psnr: float             # Best random starting latent with the found attributes, dB.
  restart_psnr: np.ndarray        # [R] every restart's final PSNR.
  loss_history: np.ndarray        # [steps] summed loss per step.


def to_float(image_uint8) -> np.ndarray:
  """uint8 [..., 3] -> float32 in [-1, 1] (the generator's range)."""
  return np.asarray(image_uint8, np.float32) / 127.5 - 1.0


def mse_psnr(a, b, axis=None):
  """MSE on [0, 1] pixel values and PSNR in dB between images in [-1, 1]."""
  mse = np.mean(((np.asarray(a, np.float64) - np.asarray(b, np.float64)) / 2.0) ** 2, axis=axis)
  return mse, 10.0 * np.log10(1.0 / np.maximum(mse, 1e-12))


def soft_generate(run: Run, z, probs: List[jnp.ndarray], g_variables=None):
  """G(z, attributes) where attribute a is the mix probs[a] [n, n_a] of its values' embeddings."""
  variables = run.g_variables if g_variables is None else g_variables
  return run.generator.apply(variables, z, tuple(probs), train=False)


def d_features(run: Run, images, d_variables=None) -> List[jnp.ndarray]:
  """The discriminator's named feature maps (eval mode, unspecified labels), shallow to deep."""
  unspecified = jnp.asarray(run.vocabulary.unspecified(), jnp.int32)
  labels = jnp.tile(unspecified[None], (images.shape[0], 1))
  return interface.d_features(run.discriminator,
                              run.d_variables if d_variables is None else d_variables,
                              images, labels)


def _mix(logits_flat, known, num_classes):
  """Splits flat logits per attribute -> softmax probabilities; known attributes are one-hot.

  known: int [A], value index or num_classes[a] (= unknown); an array, so which attributes are
  known is data, not part of the compiled program.
  """
  probs, start = [], 0
  for a, k in enumerate(num_classes):
    soft = jax.nn.softmax(logits_flat[:, start:start + k], axis=-1)
    fixed = jnp.broadcast_to(jax.nn.one_hot(known[a], k), soft.shape)
    probs.append(jnp.where(known[a] < k, fixed, soft))
    start += k
  return probs


class Inverter:
  """The inversion of one run with one config, compiled once for every photo.

  The photo, its discriminator features and the known attributes are arguments of the compiled
  programs (not constants baked into them), so inverting another photo, or the same one with
  other known attributes, reuses the compilation (and JAX's persistent cache across processes).
  The optimisation runs as `chunks` equal jitted calls, so a caller sees progress between them
  and other work on the model can run in between (gan/studio).
  """

  def __init__(self, run: Run, config: Optional[InversionConfig] = None, chunks: int = 1):
    config = config or InversionConfig()
    config.validate()
    self.run, self.config = run, config
    self.chunks = max(1, min(int(chunks), config.steps))
    self.chunk_steps = -(-config.steps // self.chunks)  # The last chunk may run past `steps`:
    # those steps change nothing (see _chunk), so every chunk has one compiled shape.
    self.use_features = config.feature_weight > 0
    num_classes = run.num_classes
    self._soft_steps = int(round(config.soft_fraction * config.steps)) if num_classes else 0
    self._tx = optax.adam(config.learning_rate)
    self._features = jax.jit(lambda d_vars, x: d_features(run, x, d_vars))
    self._chunk = jax.jit(self._chunk_fn)
    self._hard_labels = jax.jit(self._hard_labels_fn)

  def _probs(self, logits, known, hard):
    """Soft mixtures, or (once hard) each restart's most likely values as fixed one-hots."""
    return [jnp.where(hard, jax.nn.one_hot(jnp.argmax(p, axis=-1), p.shape[-1]), p)
            for p in _mix(logits, known, self.run.num_classes)]

  def _losses(self, variables, z, probs, target, target_features):
    """Per-restart total loss [R]."""
    config, (g_vars, d_vars) = self.config, variables
    x = soft_generate(self.run, z, probs, g_vars)
    total = config.pixel_weight * jnp.mean((x - target) ** 2, axis=(1, 2, 3))
    if self.use_features:
      feats = d_features(self.run, x, d_vars)
      terms = [jnp.mean((f - t) ** 2, axis=tuple(range(1, f.ndim))) / (jnp.mean(t ** 2) + 1e-8)
               for f, t in zip(feats, target_features)]
      total += config.feature_weight * sum(terms) / len(terms)
    total += config.prior_weight * (jnp.mean(z ** 2, axis=1) - 1.0) ** 2
    return total

  def _chunk_fn(self, variables, params, opt_state, target, target_features, known, start):
    # After soft_steps the attribute logits freeze (their Adam updates are zeroed, so the argmax
    # cannot drift) and only z moves.
    def step(carry, i):
      params, opt_state = carry
      hard, active = i >= self._soft_steps, i < self.config.steps
      loss_fn = lambda p: jnp.sum(self._losses(
          variables, p['z'], self._probs(p['logits'], known, hard), target, target_features))
      loss, grads = jax.value_and_grad(loss_fn)(params)
      updates, new_opt_state = self._tx.update(grads, opt_state, params)
      updates['logits'] = jnp.where(hard, 0.0, updates['logits'])
      new_params = optax.apply_updates(params, updates)
      keep = lambda new, old: jnp.where(active, new, old)
      return (jax.tree_util.tree_map(keep, new_params, params),
              jax.tree_util.tree_map(keep, new_opt_state, opt_state)), loss

    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state),
                                               start + jnp.arange(self.chunk_steps))
    return params, opt_state, losses

  def _hard_labels_fn(self, logits, known):
    labels = [jnp.argmax(p, axis=-1) for p in self._probs(logits, known, True)]
    return jnp.stack(labels, axis=1).astype(jnp.int32) if labels else \
        jnp.zeros((logits.shape[0], 0), jnp.int32)

  def target(self, image) -> np.ndarray:
    """The photo as the generator's [R, R, 3] floats in [-1, 1], or a ValueError."""
    image = np.asarray(image)
    target = to_float(image) if image.dtype == np.uint8 else image.astype(np.float32)
    r = self.run.resolution
    if target.shape != (r, r, 3):
      raise ValueError(f'The photo must be {r}x{r}x3 for this model (load it with '
                       f'gan.data.images.load_image(path, {r})); got shape {target.shape}.')
    return target

  def _start(self):
    """The starting latents z0 [R, d], the parameters and the Adam state."""
    config, run = self.config, self.run
    z0 = latents_lib.seed_latents(config.seed, config.restarts, run.latent_dim, config.truncation)
    params = {'z': jnp.asarray(z0),
              'logits': jnp.zeros((config.restarts, sum(run.num_classes)), jnp.float32)}
    return z0, params, self._tx.init(params)

  def warm_up(self) -> None:
    """Compiles every program of an inversion (one chunk on a blank photo, not a whole run)."""
    run, r = self.run, self.run.resolution
    target = jnp.zeros((1, r, r, 3), jnp.float32)
    known = jnp.asarray(run.vocabulary.unspecified(), jnp.int32)
    features = self._features(run.d_variables, target) if self.use_features else []
    _, params, opt_state = self._start()
    params, _, _ = self._chunk((run.g_variables, run.d_variables), params, opt_state, target,
                               features, known, jnp.int32(0))
    jax.block_until_ready(run.generate(params['z'], self._hard_labels(params['logits'], known)))

  def __call__(self, image, known: Optional[Mapping[str, str]] = None,
               progress: Optional[Callable[[float], None]] = None) -> InversionResult:
    """Inverts one photo (see `invert`). progress(fraction done) is called after every chunk;
    an exception it raises (a cancelled or overdue job) stops the inversion."""
    run, config = self.run, self.config
    target = jnp.asarray(self.target(image))[None]
    known_labels = jnp.asarray(run.vocabulary.encode(dict(known or {})), jnp.int32)
    variables = (run.g_variables, run.d_variables)
    try:
      target_features = self._features(run.d_variables, target) if self.use_features else []
    except ValueError as e:
      raise ValueError(f'{e} Or invert on pixels only: --feature-weight 0.') from e
    z0, params, opt_state = self._start()
    history = []
    for c in range(self.chunks):
      params, opt_state, losses = self._chunk(variables, params, opt_state, target,
                                              target_features, known_labels,
                                              jnp.int32(c * self.chunk_steps))
      history.append(losses)
      if progress is not None:
        jax.block_until_ready(losses)
        progress((c + 1) / self.chunks)
    z, labels = jax.device_get((params['z'], self._hard_labels(params['logits'], known_labels)))
    history = np.concatenate(jax.device_get(history))[:config.steps]
    # Score every restart with the ordinary generator on hard labels: what the user will get.
    target = np.asarray(target)
    reconstructions = np.asarray(run.generate(z, labels))
    restart_mse, restart_psnr = mse_psnr(reconstructions, target, axis=(1, 2, 3))
    best = int(np.argmin(restart_mse))
    # Baseline: the random starting latents with the same (found) attributes.
    starts = np.asarray(run.generate(z0, labels))
    initial_psnr = np.max(mse_psnr(starts, target, axis=(1, 2, 3))[1])
    return InversionResult(
        z=np.asarray(z[best], np.float32), labels=np.asarray(labels[best], np.int32),
        attributes=run.vocabulary.decode(labels[best]), reconstruction=reconstructions[best],
        mse=float(restart_mse[best]), psnr=float(restart_psnr[best]),
        initial_psnr=float(initial_psnr), restart_psnr=np.asarray(restart_psnr),
        loss_history=history)


def invert(run: Run, image, known: Optional[Mapping[str, str]] = None,
           config: Optional[InversionConfig] = None) -> InversionResult:
  """Finds (z, attributes) such that the EMA generator reproduces `image`.

  image: uint8 [R, R, 3] at the run's resolution (gan.data.images.load_image) or floats in [-1, 1].
  known: attributes of the photo that are known, e.g. {'category': 'mug'}; held fixed.
  To invert several photos, keep one `Inverter` (it compiles once).
  """
  inverter = Inverter(run, config)
  inverter.target(image)  # A wrong shape fails before any compilation.
  return inverter(image, known)


def _labels_with(run: Run, labels, assignments) -> np.ndarray:
  labels = np.array(labels, np.int32)
  for attribute, value in dict(assignments or {}).items():
    labels[run.vocabulary.index_of(attribute)] = run.vocabulary.value_index(attribute, value)
  return labels


def render_variants(run: Run, result: InversionResult,
                    assignments: Optional[Mapping[str, str]] = None) -> np.ndarray:
  """The inverted product with some attributes changed: [H, W, 3] in [-1, 1]."""
  labels = _labels_with(run, result.labels, assignments)
  return np.asarray(run.generate(result.z[None], labels[None]))[0]


def sweep_variants(run: Run, result: InversionResult, attribute: str,
                   assignments: Optional[Mapping[str, str]] = None):
  """The inverted product with every value of `attribute` (and `assignments` applied):
  ([V, H, W, 3], value names)."""
  vocab = run.vocabulary
  a = vocab.index_of(attribute)
  values = vocab.values(attribute)
  labels = np.tile(_labels_with(run, result.labels, assignments), (len(values), 1))
  labels[:, a] = np.arange(len(values))
  z = np.tile(result.z, (len(values), 1))
  return np.asarray(run.generate(z, labels)), values


def jitter_variants(run: Run, result: InversionResult, num: int, jitter: float, seed: int = 0,
                    assignments: Optional[Mapping[str, str]] = None) -> np.ndarray:
  """`num` near neighbours of the inverted latent (z + jitter * N(0, 1)), same attributes."""
  labels = _labels_with(run, result.labels, assignments)
  noise = latents_lib.seed_latents(seed, num, run.latent_dim)
  z = result.z[None] + np.float32(jitter) * noise
  return np.asarray(run.generate(z, np.tile(labels, (num, 1))))
