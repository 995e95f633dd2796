"""GAN inversion: find the latent and attributes with which the generator reproduces a photo.

How (one batched optimisation, optax Adam):
- R restarts are optimised together as one batch: the parameters are latents z [R, d] and
  attribute logits [R, sum of values]. The loss is the sum of the R per-restart losses, so each
  restart follows its own gradient (Adam is element-wise), and the best restart wins at the end.
- Loss per restart: pixel MSE to the photo + feature loss (the discriminator's named feature maps,
  which every registered model sows under 'features' (gan/models/interface.py); each map's
  squared error is divided by the photo's mean squared activation so every map counts alike) + a small prior term keeping |z|^2 / d near 1, the shell
  where Gaussian latents live.
- Attributes, our choice: *soft attribute embeddings*. Each attribute's embedding is replaced by a
  softmax(logits)-weighted mix of the embeddings of its values: the model interface lets every
  generator take soft labels (per-attribute probabilities) in place of int labels. The generator is
  linear in the embedding at its first layer and in its conditional-BatchNorm scales/shifts (dcgan),
  so a mix is a meaningful in-between condition and gradients pick the best-fitting values for all attributes at once,
  instead of trying every combination. After `soft_fraction` of the steps each restart is
  hardened to its argmax values and the latent alone is fine-tuned for the remaining steps, so the
  result is an ordinary (z, labels) pair that `generate` reproduces exactly.
  Attributes the user knows (`known`) stay fixed one-hot throughout.
- Reported error: MSE on [0, 1] pixel values and PSNR = 10 log10(1 / MSE) dB, for the chosen
  restart, next to the best of the random starting latents (the "did it help" baseline).
"""
import dataclasses
from typing import Dict, List, Mapping, Optional

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
  """Splits flat logits per attribute -> softmax probabilities; known attributes are one-hot."""
  probs, start = [], 0
  for a, k in enumerate(num_classes):
    if known[a] < k:
      probs.append(jnp.broadcast_to(jax.nn.one_hot(int(known[a]), k), (logits_flat.shape[0], k)))
    else:
      probs.append(jax.nn.softmax(logits_flat[:, start:start + k], axis=-1))
    start += k
  return probs


def invert(run: Run, image, known: Optional[Mapping[str, str]] = None,
           config: Optional[InversionConfig] = None) -> InversionResult:
  """Finds (z, attributes) such that the EMA generator reproduces `image`.

  image: uint8 [R, R, 3] at the run's resolution (gan.data.images.load_image) or floats in [-1, 1].
  known: attributes of the photo that are known, e.g. {'category': 'mug'}; held fixed.
  """
  config = config or InversionConfig()
  config.validate()
  image = np.asarray(image)
  target = to_float(image) if image.dtype == np.uint8 else image.astype(np.float32)
  r = run.resolution
  if target.shape != (r, r, 3):
    raise ValueError(f'The photo must be {r}x{r}x3 for this model (load it with '
                     f'gan.data.images.load_image(path, {r})); got shape {target.shape}.')
  vocab, num_classes = run.vocabulary, run.num_classes
  known_labels = vocab.encode(dict(known or {}))  # numpy: which attributes are fixed is static.
  target = jnp.asarray(target)[None]
  use_features = config.feature_weight > 0
  try:
    target_features = d_features(run, target) if use_features else []
  except ValueError as e:
    raise ValueError(f'{e} Or invert on pixels only: --feature-weight 0.') from e
  d = run.latent_dim

  def losses(variables, z, probs):
    """Per-restart total loss [R]."""
    g_vars, d_vars = variables
    x = soft_generate(run, z, probs, g_vars)
    pixel = jnp.mean((x - target) ** 2, axis=(1, 2, 3))
    total = config.pixel_weight * pixel
    if use_features:
      feats = d_features(run, x, d_vars)
      terms = [jnp.mean((f - t) ** 2, axis=tuple(range(1, f.ndim))) / (jnp.mean(t ** 2) + 1e-8)
               for f, t in zip(feats, target_features)]
      total += config.feature_weight * sum(terms) / len(terms)
    total += config.prior_weight * (jnp.mean(z ** 2, axis=1) - 1.0) ** 2
    return total

  tx = optax.adam(config.learning_rate)
  soft_steps = int(round(config.soft_fraction * config.steps)) if num_classes else 0

  def probs_at(logits, hard):
    """Soft mixtures, or (once hard) each restart's most likely values as fixed one-hots."""
    return [jnp.where(hard, jax.nn.one_hot(jnp.argmax(p, axis=-1), p.shape[-1]), p)
            for p in _mix(logits, known_labels, num_classes)]

  @jax.jit
  def run_all(variables, z0):
    # Both phases in one scan (one compilation): after soft_steps the attribute logits freeze
    # (their Adam updates are zeroed, so the argmax cannot drift) and only z moves.
    def step(carry, i):
      params, opt_state = carry
      hard = i >= soft_steps
      loss_fn = lambda p: jnp.sum(losses(variables, p['z'], probs_at(p['logits'], hard)))
      loss, grads = jax.value_and_grad(loss_fn)(params)
      updates, opt_state = tx.update(grads, opt_state, params)
      updates['logits'] = jnp.where(hard, 0.0, updates['logits'])
      return (optax.apply_updates(params, updates), opt_state), loss

    params = {'z': z0, 'logits': jnp.zeros((z0.shape[0], sum(num_classes)), jnp.float32)}
    (params, _), history = jax.lax.scan(step, (params, tx.init(params)),
                                        jnp.arange(config.steps))
    labels = [jnp.argmax(p, axis=-1) for p in probs_at(params['logits'], True)]
    labels = jnp.stack(labels, axis=1).astype(jnp.int32) if labels else \
        jnp.zeros((z0.shape[0], 0), jnp.int32)
    return params['z'], labels, history

  z0 = latents_lib.seed_latents(config.seed, config.restarts, d, config.truncation)
  variables = (run.g_variables, run.d_variables)
  z, labels, history = jax.device_get(run_all(variables, jnp.asarray(z0)))
  # Score every restart with the ordinary generator on hard labels: what the user will get.
  reconstructions = np.asarray(run.generate(z, labels))
  restart_mse, restart_psnr = mse_psnr(reconstructions, np.asarray(target), axis=(1, 2, 3))
  best = int(np.argmin(restart_mse))
  # Baseline: the random starting latents with the same (found) attributes.
  starts = np.asarray(run.generate(z0, labels))
  initial_psnr = np.max(mse_psnr(starts, np.asarray(target), axis=(1, 2, 3))[1])
  return InversionResult(
      z=np.asarray(z[best], np.float32), labels=np.asarray(labels[best], np.int32),
      attributes=vocab.decode(labels[best]), reconstruction=reconstructions[best],
      mse=float(restart_mse[best]), psnr=float(restart_psnr[best]),
      initial_psnr=float(initial_psnr), restart_psnr=np.asarray(restart_psnr),
      loss_history=np.asarray(history))


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
