"""GAN losses as pure functions of discriminator logits, plus gradient penalties.

Each loss gives d_loss_real, d_loss_fake (D minimises their sum) and g_loss. Means are over the
local batch; the train step pmeans them, which gives the global-batch mean.
"""
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from gan.registry import Registry

LOSSES = Registry('loss')


class GANLoss(NamedTuple):
  d_real: Callable[[jnp.ndarray], jnp.ndarray]   # real logits -> scalar
  d_fake: Callable[[jnp.ndarray], jnp.ndarray]   # fake logits -> scalar
  g: Callable[[jnp.ndarray], jnp.ndarray]        # fake logits -> scalar
  gradient_penalty: bool = False                 # WGAN-GP needs the interpolation penalty.


LOSSES.register('non_saturating')(GANLoss(  # BCE of Goodfellow et al., -log D(G(z)) for G.
    d_real=lambda r: jnp.mean(jax.nn.softplus(-r)),
    d_fake=lambda f: jnp.mean(jax.nn.softplus(f)),
    g=lambda f: jnp.mean(jax.nn.softplus(-f))))

LOSSES.register('hinge')(GANLoss(  # Lim & Ye 2017; SNGAN, BigGAN.
    d_real=lambda r: jnp.mean(jax.nn.relu(1.0 - r)),
    d_fake=lambda f: jnp.mean(jax.nn.relu(1.0 + f)),
    g=lambda f: -jnp.mean(f)))

LOSSES.register('wasserstein')(GANLoss(  # Arjovsky et al. 2017, with the GP of Gulrajani et al.
    d_real=lambda r: -jnp.mean(r),
    d_fake=lambda f: jnp.mean(f),
    g=lambda f: -jnp.mean(f),
    gradient_penalty=True))

LOSSES.register('least_squares')(GANLoss(  # Mao et al. 2017, a-b-c = 0-1-1.
    d_real=lambda r: 0.5 * jnp.mean((r - 1.0) ** 2),
    d_fake=lambda f: 0.5 * jnp.mean(f ** 2),
    g=lambda f: 0.5 * jnp.mean((f - 1.0) ** 2)))


def _input_gradients(d_fn, images):
  return jax.grad(lambda x: jnp.sum(d_fn(x)))(images)


def gradient_penalty(d_fn, real, fake, key):
  """WGAN-GP: E[(||grad_x D(x_hat)||_2 - 1)^2] at random interpolates of real and fake."""
  eps = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
  interpolates = eps * real + (1.0 - eps) * fake
  grads = _input_gradients(d_fn, interpolates)
  norms = jnp.sqrt(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=-1) + 1e-12)
  return jnp.mean((norms - 1.0) ** 2)


def r1_penalty(d_fn, real):
  """R1 (Mescheder et al. 2018): E[||grad_x D(x)||^2] on real data; weight gamma/2 applied by caller."""
  grads = _input_gradients(d_fn, real)
  return jnp.mean(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=-1))


def attribute_cross_entropy(class_logits, labels, num_classes):
  """AC-GAN auxiliary loss: mean cross-entropy of each attribute head against its label.

  class_logits: one [N, num_classes[a]] array per attribute; labels int [N, A], where the value
  num_classes[a] ("unspecified") contributes nothing. Normalised by N * A (not by the number of
  specified labels) so that the pmean of per-device losses is exactly the global-batch loss.
  """
  total = 0.0
  for a, (logits, n) in enumerate(zip(class_logits, num_classes)):
    label = labels[:, a]
    specified = label < n
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    picked = jnp.take_along_axis(log_probs, jnp.minimum(label, n - 1)[:, None], axis=-1)[:, 0]
    total = total - jnp.sum(jnp.where(specified, picked, 0.0))
  return total / (labels.shape[0] * len(num_classes))


def attribute_hits(class_logits, labels, num_classes):
  """Per attribute, (right, specified): how many specified labels the heads' argmax reads right,
  and how many labels are specified. Counts, so that sums over devices give exact accuracies.

  What D's AC heads can read bounds what the AC term can teach G: an attribute they read no
  better on real images than chance gives G no signal for it.
  """
  counts = []
  for a, (logits, n) in enumerate(zip(class_logits, num_classes)):
    label = labels[:, a]
    specified = label < n
    right = jnp.logical_and(jnp.argmax(logits, axis=-1) == label, specified)
    counts.append((jnp.sum(right), jnp.sum(specified)))
  return tuple(counts)


def average_pool(images, factor: int):
  """NHWC images averaged over factor x factor blocks (factor 1: unchanged)."""
  if factor == 1:
    return images
  n, h, w, c = images.shape
  return images.reshape(n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


def mode_seeking_ratio(images_a, images_b, z_a, z_b, pool: int = 1):
  """Mean over pairs of |G(z_a, c) - G(z_b, c)|_1 / |z_a - z_b|_1 (per-element means).

  The pairs share their condition c. Mao et al. 2019 (MSGAN): a generator that ignores z has a
  ratio near 0. It is a per-device estimate; the caller's pmean of gradients averages devices.
  `pool` > 1 measures the image distance on factor-`pool` average-pooled images, so the variety
  it rewards is in shape, placement and tone, not in fine texture (a product's pattern is fine
  texture, and the condition fixes it).
  """
  images_a, images_b = average_pool(images_a, pool), average_pool(images_b, pool)
  image_distance = jnp.mean(jnp.abs(images_a - images_b), axis=tuple(range(1, images_a.ndim)))
  latent_distance = jnp.mean(jnp.abs(z_a - z_b), axis=-1)
  return jnp.mean(image_distance / (latent_distance + 1e-8))


def mode_seeking_penalty(ratio, eps: float = 1e-5):
  """MSGAN's regulariser 1 / (ratio + eps): G minimises it, so it maximises the ratio."""
  return 1.0 / (ratio + eps)
