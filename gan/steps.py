"""Pure training and sampling steps. The only collectives are lax.pmean / axis_index over 'batch'.

One training step = `d_steps_per_g_step` discriminator updates followed by one generator update.
As in the classic DCGAN loop, the generator's forward pass of the last D update is reused for the
G update (through jax.vjp), so G runs forward once per update, not twice.
"""
from typing import Callable, Dict, Tuple

import jax
import jax.numpy as jnp
import optax

from gan import losses as losses_lib
from gan import parallel
from gan.state import GANState

AXIS = parallel.AXIS


def drop_attributes(key, labels, num_classes, rate, axis_name=AXIS):
  """Replaces each attribute by 'unspecified' (== num_classes[a]) with probability `rate`."""
  if rate <= 0 or not num_classes:
    return labels
  drop = parallel.global_draw(key, lambda k, s: jax.random.bernoulli(k, rate, s), labels.shape,
                              axis_name)
  unspecified = jnp.asarray(num_classes, labels.dtype)[None, :]
  return jnp.where(drop, unspecified, labels)


def _all_finite(*trees):
  leaves = [jnp.all(jnp.isfinite(x)) for t in trees for x in jax.tree_util.tree_leaves(t)]
  return jnp.all(jnp.stack(leaves))


def ema_decay(step, decay, start_step=0):
  """EMA decay with warm-up, min(decay, (1 + t) / (10 + t)) as in tf.train.ExponentialMovingAverage.

  Without the warm-up a 0.999 EMA still holds 0.999^2000 = 14% of the random initial weights after
  2000 steps, and early samples show mostly noise.
  """
  t = jnp.maximum(step - start_step, 0).astype(jnp.float32)
  return jnp.where(step < start_step, 0.0, jnp.minimum(decay, (1.0 + t) / (10.0 + t)))


def _ema(ema, new, decay):
  return jax.tree_util.tree_map(lambda e, p: decay * e + (1.0 - decay) * p, ema, new)


def check_aux_classifier_config(config) -> None:
  """The AC-GAN loss weight must be >= 0 and, when used, D must have its attribute heads."""
  weight = config.aux_classifier_weight
  if weight < 0:
    raise ValueError(f'aux_classifier_weight must be >= 0, got {weight}.')
  if weight and config.model.conditional and not config.model.get('aux_classifier', False):
    raise ValueError('aux_classifier_weight > 0 needs the discriminator\'s attribute heads: set '
                     '--config.model.aux_classifier=True, or --config.aux_classifier_weight=0.')


def check_mode_seeking_config(config) -> float:
  """The mode-seeking weight (>= 0); it needs two fakes per device to pair."""
  weight = float(config.get('mode_seeking_weight', 0.0))
  if weight < 0:
    raise ValueError(f'mode_seeking_weight must be >= 0, got {weight}.')
  pool = int(config.get('mode_seeking_pool', 1))
  resolution = config.data.resolution
  if pool < 1 or resolution % pool:
    raise ValueError(f'mode_seeking_pool must be a positive divisor of data.resolution '
                     f'({resolution}), got {pool}.')
  return weight


def pair_conditions(labels):
  """Labels whose second half repeats the first, so fakes i and i + n//2 share a condition."""
  half = labels.shape[0] // 2
  return jnp.concatenate([labels[:half], labels[:half], labels[2 * half:]])


def make_train_step(config, generator, discriminator, g_tx, d_tx, g_schedule, d_schedule,
                    num_classes, augment_fn=None, attribute_names=()) -> Callable:
  """Returns train_step(state, batch) -> (state, metrics), to be pmapped over axis 'batch'.

  batch: {'image': float32 [b, H, W, 3] in [-1, 1], 'labels': int32 [b, A]} (this device's part).
  augment_fn(images, key) -> images: DiffAugment applied to everything D sees (None = off).
  attribute_names: names for the per-attribute metrics (d_heads_real_acc/NAME, d_heads_fake_acc/
  NAME: how often D's AC heads read the attribute on real images and on G's fakes); default 0, 1, ...
  """
  loss = losses_lib.LOSSES.get(config.loss)
  num_classes = tuple(num_classes) if config.model.conditional else ()
  latent_dim = generator.latent_dim  # The model interface (gan/models/interface.py).
  n_d = config.d_steps_per_g_step
  if n_d < 1:
    raise ValueError(f'd_steps_per_g_step must be >= 1, got {n_d}.')
  gp_weight = config.gp_weight if loss.gradient_penalty else 0.0
  r1_weight = config.r1_weight
  augment = augment_fn or (lambda x, key: x)
  check_aux_classifier_config(config)
  aux_weight = config.aux_classifier_weight if num_classes else 0.0
  ms_weight = check_mode_seeking_config(config)
  head_names = tuple(attribute_names) or tuple(str(a) for a in range(len(num_classes)))

  def head_accuracy(prefix, class_logits, labels):
    """Accuracies of D's heads over the global batch (counts summed over devices first, so a
    device with fewer specified labels weighs less, as on one device)."""
    counts = jax.lax.psum(jnp.array(losses_lib.attribute_hits(class_logits, labels, num_classes)),
                          AXIS)  # [attributes, (right, specified)]: one collective per call
    accuracies = counts[:, 0] / jnp.maximum(counts[:, 1], 1)
    return {f'{prefix}/{name}': acc for name, acc in zip(head_names, accuracies)}

  def g_forward(g_params, g_stats, z, labels):
    fake, updates = generator.apply({'params': g_params, 'batch_stats': g_stats}, z, labels,
                                    train=True, mutable=['batch_stats'])
    return fake, updates.get('batch_stats', {})  # {} for a model without BatchNorm.

  def d_forward_all(d_params, d_stats, images, labels):
    """(real/fake logits, per-attribute class logits or None, new batch stats)."""
    out, updates = discriminator.apply({'params': d_params, 'batch_stats': d_stats}, images,
                                       labels, train=True, mutable=['batch_stats'])
    logits, class_logits = out if isinstance(out, tuple) else (out, None)
    return logits, class_logits, updates.get('batch_stats', {})

  def d_forward(d_params, d_stats, images, labels):
    logits, _, stats = d_forward_all(d_params, d_stats, images, labels)
    return logits, stats

  def d_update(state_d, fake, real, labels_real, labels_fake, true_labels, key):
    d_params, d_stats, d_opt_state = state_d
    aug_key, gp_key = jax.random.split(parallel.device_key(key))
    real_aug, fake_aug = augment(real, aug_key), augment(fake, aug_key)

    def loss_fn(params):
      real_logits, real_classes, stats = d_forward_all(params, d_stats, real_aug, labels_real)
      fake_logits, stats = d_forward(params, stats, fake_aug, labels_fake)
      loss_real, loss_fake = loss.d_real(real_logits), loss.d_fake(fake_logits)
      total = loss_real + loss_fake
      aux = {'d_loss_real': loss_real, 'd_loss_fake': loss_fake,
             'd_real': jnp.mean(real_logits), 'd_fake': jnp.mean(fake_logits)}
      if aux_weight:  # The heads learn from real images only, with their full (undropped) labels.
        class_loss = losses_lib.attribute_cross_entropy(real_classes, true_labels, num_classes)
        total += aux_weight * class_loss
        aux['d_class_loss'] = class_loss
        aux.update(head_accuracy('d_heads_real_acc', real_classes, true_labels))
      # Penalties run D without keeping its statistics updates: they probe D, not train its BN.
      d_plain = lambda x, lab: d_forward(params, stats, x, lab)[0]
      if gp_weight:
        penalty = losses_lib.gradient_penalty(lambda x: d_plain(x, labels_fake), real_aug,
                                              fake_aug, gp_key)
        total += gp_weight * penalty
        aux['gradient_penalty'] = penalty
      if r1_weight:
        penalty = losses_lib.r1_penalty(lambda x: d_plain(x, labels_real), real_aug)
        total += 0.5 * r1_weight * penalty
        aux['r1_penalty'] = penalty
      aux['d_loss'] = total
      return total, (stats, aux)

    grads, (new_stats, aux) = jax.grad(loss_fn, has_aux=True)(d_params)
    grads = jax.lax.pmean(grads, AXIS)
    updates, new_opt_state = d_tx.update(grads, d_opt_state, d_params)
    return (optax.apply_updates(d_params, updates), new_stats, new_opt_state), aux

  def train_step(state: GANState, batch: Dict[str, jnp.ndarray]) -> Tuple[GANState, Dict]:
    real, labels = batch['image'], batch['labels']
    local_n = real.shape[0]
    key = jax.random.fold_in(state.rng, state.step)
    z_key, drop_real_key, drop_fake_key, d_key, g_key = jax.random.split(key, 5)
    labels_real = drop_attributes(drop_real_key, labels, num_classes, config.attribute_dropout)
    labels_fake = drop_attributes(drop_fake_key, labels, num_classes, config.attribute_dropout)
    half = local_n // 2
    if ms_weight:  # Mode seeking compares two latents under one condition.
      if half < 1:
        raise ValueError('mode_seeking_weight > 0 needs at least 2 images per device; raise '
                         'batch_size or set --config.mode_seeking_weight=0.')
      labels_fake = pair_conditions(labels_fake)
    z_keys = jax.random.split(z_key, n_d)
    d_keys = jax.random.split(d_key, n_d)
    draw_z = lambda k: parallel.global_draw(k, jax.random.normal, (local_n, latent_dim))

    state_d = (state.d_params, state.d_batch_stats, state.d_opt_state)
    g_stats = state.g_batch_stats
    for i in range(n_d - 1):  # Extra D updates, each on fresh fakes.
      fake, g_stats = g_forward(state.g_params, g_stats, draw_z(z_keys[i]), labels_fake)
      state_d, _ = d_update(state_d, fake, real, labels_real, labels_fake, labels, d_keys[i])
    # Last D update and the G update share one generator forward pass.
    z = draw_z(z_keys[-1])
    fake, g_vjp, g_stats = jax.vjp(lambda p: g_forward(p, g_stats, z, labels_fake),
                                   state.g_params, has_aux=True)
    state_d, metrics = d_update(state_d, jax.lax.stop_gradient(fake), real, labels_real,
                                labels_fake, labels, d_keys[-1])
    d_params, d_stats, d_opt_state = state_d

    g_aug_key = parallel.device_key(g_key)

    def g_loss_fn(fake_images):
      logits, class_logits, _ = d_forward_all(d_params, d_stats, augment(fake_images, g_aug_key),
                                              labels_fake)
      total, aux = loss.g(logits), {}
      if aux_weight:  # G is pushed to make D's heads read the requested (specified) attributes.
        class_loss = losses_lib.attribute_cross_entropy(class_logits, labels_fake, num_classes)
        total += aux_weight * class_loss
        aux['g_class_loss'] = class_loss
        aux.update(head_accuracy('d_heads_fake_acc', class_logits, labels_fake))
      if ms_weight:  # Two latents, one condition: different images (MSGAN).
        ratio = losses_lib.mode_seeking_ratio(fake_images[:half], fake_images[half:2 * half],
                                              z[:half], z[half:2 * half],
                                              pool=config.get('mode_seeking_pool', 1))
        total += ms_weight * losses_lib.mode_seeking_penalty(ratio)
        aux['g_mode_seeking_ratio'] = ratio
      return total, aux

    (g_loss, g_aux), fake_grad = jax.value_and_grad(g_loss_fn, has_aux=True)(fake)
    (g_grads,) = g_vjp(fake_grad)
    g_grads = jax.lax.pmean(g_grads, AXIS)
    g_updates, g_opt_state = g_tx.update(g_grads, state.g_opt_state, state.g_params)
    g_params = optax.apply_updates(state.g_params, g_updates)

    decay = ema_decay(state.step, config.ema_decay, config.ema_start_step)
    new_state = state.replace(
        step=state.step + 1, g_params=g_params, g_batch_stats=g_stats, d_params=d_params,
        d_batch_stats=d_stats, g_opt_state=g_opt_state, d_opt_state=d_opt_state,
        ema_params=_ema(state.ema_params, g_params, decay))
    metrics = dict(metrics, g_loss=g_loss, **g_aux)
    metrics = jax.lax.pmean(metrics, AXIS)
    # A non-finite loss or parameter never enters the state: the step is refused and reported.
    finite = _all_finite(metrics, g_params, d_params)
    new_state = jax.tree_util.tree_map(lambda new, old: jnp.where(finite, new, old), new_state, state)
    metrics['finite'] = finite.astype(jnp.float32)
    metrics['g_learning_rate'] = g_schedule(state.step)
    metrics['d_learning_rate'] = d_schedule(state.step)
    return new_state, metrics

  return train_step


def pmap_train_step(train_step: Callable) -> Callable:
  """State and metrics are identical on every device (pmean'd), so they travel unreplicated."""
  return jax.pmap(train_step, axis_name=AXIS, in_axes=(None, 0), out_axes=(None, None))


def random_labels(key, n, num_classes, dropout):
  """Uniform attribute labels, each unspecified with probability `dropout`."""
  if not num_classes:
    return jnp.zeros((n, 0), jnp.int32)
  keys = jax.random.split(key, len(num_classes) + 1)
  cols = [jax.random.randint(keys[a], (n,), 0, c) for a, c in enumerate(num_classes)]
  labels = jnp.stack(cols, axis=1).astype(jnp.int32)
  drop = jax.random.bernoulli(keys[-1], dropout, labels.shape)
  return jnp.where(drop, jnp.asarray(num_classes, jnp.int32)[None], labels)


def make_standing_stats_fn(stats_generator, config, num_classes) -> Callable:
  """standing(ema_params, g_batch_stats, key) -> BatchNorm statistics for the EMA generator.

  EMA weights never ran in training, so the training G's running statistics do not fit them. We
  re-estimate ("standing statistics", BigGAN) from one large batch of random latents and labels.
  `stats_generator` must be built with bn_momentum=0 so the result is exactly that batch's statistics.
  """
  num_classes = tuple(num_classes) if config.model.conditional else ()
  n = config.sample.standing_stats_batches * config.batch_size

  @jax.jit
  def standing(ema_params, g_batch_stats, key):
    z_key, label_key = jax.random.split(key)
    z = jax.random.normal(z_key, (n, stats_generator.latent_dim))
    labels = random_labels(label_key, n, num_classes, config.attribute_dropout)
    _, updates = stats_generator.apply({'params': ema_params, 'batch_stats': g_batch_stats}, z,
                                       labels, train=True, mutable=['batch_stats'])
    return updates.get('batch_stats', {})

  return standing


def make_sample_fn(generator) -> Callable:
  """sample(params, batch_stats, z, labels) -> images in [-1, 1] (eval mode, jitted)."""

  @jax.jit
  def sample(params, batch_stats, z, labels):
    return generator.apply({'params': params, 'batch_stats': batch_stats}, z, labels, train=False)

  return sample
