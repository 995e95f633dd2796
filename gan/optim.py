"""The two optax optimisers (generator, discriminator) from the config."""
import ml_collections
import optax


def learning_rate_schedule(lr: float, warmup_steps: int) -> optax.Schedule:
  if warmup_steps > 0:
    return optax.linear_schedule(0.0, lr, warmup_steps)
  return optax.constant_schedule(lr)


def build_optimizers(config: ml_collections.ConfigDict):
  """Returns ((g_tx, g_schedule), (d_tx, d_schedule)): Adam per network, betas from config."""
  o = config.optim
  g_schedule = learning_rate_schedule(o.g_lr, o.warmup_steps)
  d_schedule = learning_rate_schedule(o.d_lr, o.warmup_steps)
  g_tx = optax.adam(g_schedule, b1=o.g_b1, b2=o.g_b2)
  d_tx = optax.adam(d_schedule, b1=o.d_b1, b2=o.d_b2)
  return (g_tx, g_schedule), (d_tx, d_schedule)
