"""The two optax optimisers (generator, discriminator) from the config."""
import jax
import ml_collections
import optax

from gan.models import interface


def learning_rate_schedule(lr: float, warmup_steps: int = 0, num_steps: int = 0,
                           decay_fraction: float = 0.0) -> optax.Schedule:
  """Linear warm-up from 0, constant, then (decay_fraction > 0) linear decay to 0 over the last
  decay_fraction of num_steps. A pure function of the step, so resuming is exact."""
  if not 0.0 <= decay_fraction <= 1.0:
    raise ValueError(f'optim.decay_fraction must be in [0, 1], got {decay_fraction}.')
  decay_steps = int(round(decay_fraction * num_steps))
  decay_start = num_steps - decay_steps
  if decay_steps and warmup_steps > decay_start:
    raise ValueError(f'optim.warmup_steps ({warmup_steps}) runs into the decay, which starts at '
                     f'step {decay_start}: shorten one of them.')
  pieces, boundaries = [], []
  if warmup_steps > 0:
    pieces.append(optax.linear_schedule(0.0, lr, warmup_steps))
    boundaries.append(warmup_steps)
  if decay_steps:
    if decay_start > warmup_steps:
      pieces.append(optax.constant_schedule(lr))
      boundaries.append(decay_start)
    pieces.append(optax.linear_schedule(lr, 0.0, decay_steps))
  else:
    pieces.append(optax.constant_schedule(lr))
  if len(pieces) == 1:
    return pieces[0]
  return optax.join_schedules(pieces, boundaries)  # One boundary between each two pieces.


def build_optimizers(config: ml_collections.ConfigDict):
  """Returns ((g_tx, g_schedule), (d_tx, d_schedule)): Adam per network, betas from config."""
  o = config.optim
  schedule_args = dict(warmup_steps=o.warmup_steps, num_steps=config.num_train_steps,
                       decay_fraction=o.get('decay_fraction', 0.0))
  g_schedule = learning_rate_schedule(o.g_lr, **schedule_args)
  d_schedule = learning_rate_schedule(o.d_lr, **schedule_args)
  g_tx = optax.adam(g_schedule, b1=o.g_b1, b2=o.g_b2)
  d_tx = optax.adam(d_schedule, b1=o.d_b1, b2=o.d_b2)
  scale = float(o.get('aux_lr_scale', 1.0))
  if scale <= 0:
    raise ValueError(f'optim.aux_lr_scale must be > 0, got {scale}.')
  if scale != 1.0:  # Plain Adam otherwise, so existing checkpoints keep their optimiser state.
    d_tx = with_head_learning_rate(d_tx, lambda step: scale * d_schedule(step), o)
  return (g_tx, g_schedule), (d_tx, d_schedule)


def with_head_learning_rate(d_tx, head_schedule, o) -> optax.GradientTransformation:
  """D's optimiser with its own Adam for the attribute heads (interface.is_attribute_head).

  The heads only classify real images; at D's rate (tuned for the real/fake game) they learn a
  fine attribute slowly, and what they cannot read, the AC term cannot teach G.
  """
  def labels(params):
    return jax.tree_util.tree_map_with_path(
        lambda path, _: 'heads' if interface.is_attribute_head(path) else 'rest', params)
  return optax.multi_transform(
      {'rest': d_tx, 'heads': optax.adam(head_schedule, b1=o.d_b1, b2=o.d_b2)}, labels)
