import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from gan import optim
from gan import state as state_lib
from gan.models import build_models, interface
from gan.models.dcgan import DCGANGenerator

# The classic PyTorch DCGAN (nz=100, ngf=ndf=64) has exactly these parameter counts.
TORCH_DCGAN_G_PARAMS = 3_576_704
TORCH_DCGAN_D_PARAMS = 2_765_568


def _state(config, num_classes):
  g, d = build_models(config, num_classes)
  (g_tx, _), (d_tx, _) = optim.build_optimizers(config)
  return g, d, state_lib.create_state(config, g, d, g_tx, d_tx, num_classes, 0)


def test_unconditional_dcgan_matches_reference_parameter_counts():
  config = default.get_config()
  config.model.conditional = False
  _, _, state = _state(config, ())
  assert state_lib.count_params(state.g_params) == TORCH_DCGAN_G_PARAMS
  assert state_lib.count_params(state.d_params) == TORCH_DCGAN_D_PARAMS


@pytest.mark.parametrize('resolution,d_norm', [(8, 'batch'), (16, 'spectral'), (32, 'none')])
def test_conditional_shapes(resolution, d_norm):
  config = default.get_config()
  config.data.resolution = resolution
  config.model.g_width = config.model.d_width = 8
  config.model.d_norm = d_norm
  num_classes = (3, 4)
  g, d, state = _state(config, num_classes)
  z = jax.random.normal(jax.random.PRNGKey(0), (5, config.model.latent_dim))
  labels = jnp.array([[0, 1], [2, 4], [3, 0], [1, 3], [3, 4]], jnp.int32)  # 3/4 = unspecified
  images = g.apply({'params': state.g_params, 'batch_stats': state.g_batch_stats}, z, labels,
                   train=False)
  assert images.shape == (5, resolution, resolution, 3)
  assert float(jnp.max(jnp.abs(images))) <= 1.0
  logits, class_logits = d.apply({'params': state.d_params, 'batch_stats': state.d_batch_stats},
                                 images, labels, train=False)
  assert logits.shape == (5,)
  assert [c.shape for c in class_logits] == [(5, 3), (5, 4)]  # AC-GAN heads, one per attribute
  has_sn = any('sigma' in '/'.join(map(str, p)) for p, _ in
               jax.tree_util.tree_leaves_with_path(state.d_batch_stats))
  assert has_sn == (d_norm == 'spectral')


def test_labels_change_the_generated_image():
  config = default.get_config()
  config.data.resolution = 16
  config.model.g_width = 8
  g, _, state = _state(config, (3,))
  # Conditional BN starts as plain BN (zero-initialised gamma/beta); perturb it to see the effect.
  params = jax.tree_util.tree_map(
      lambda x: x + 0.1 * jax.random.normal(jax.random.PRNGKey(1), x.shape), state.g_params)
  z = jnp.ones((2, config.model.latent_dim))
  out = g.apply({'params': params, 'batch_stats': state.g_batch_stats}, z,
                jnp.array([[0], [1]], jnp.int32), train=False)
  assert float(jnp.mean(jnp.abs(out[0] - out[1]))) > 1e-3


def test_unspecified_attribute_adds_no_projection():
  config = default.get_config()
  config.data.resolution = 8
  config.model.d_width = 4
  _, d, state = _state(config, (2,))
  variables = {'params': state.d_params, 'batch_stats': state.d_batch_stats}
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))
  unconditional = d.clone(num_classes=())
  base = unconditional.apply({'params': {k: v for k, v in state.d_params.items()
                                         if k != 'projection'},
                              'batch_stats': state.d_batch_stats}, x, None, train=False)
  out, _ = d.apply(variables, x, jnp.array([[2], [2]], jnp.int32), train=False)
  np.testing.assert_allclose(out, base, rtol=1e-6)


def test_discriminator_heads_follow_the_config():
  config = default.get_config()
  config.data.resolution = 8
  config.model.d_width = 4
  x = jnp.zeros((2, 8, 8, 3))
  labels = jnp.zeros((2, 1), jnp.int32)
  _, d, state = _state(config, (5,))
  assert state.d_params['classify_0']['kernel'].shape == (4, 5)  # pooled last map -> 5 values
  config.model.aux_classifier = False
  _, d, state = _state(config, (5,))
  assert 'classify_0' not in state.d_params
  out = d.apply({'params': state.d_params, 'batch_stats': state.d_batch_stats}, x, labels,
                train=False)
  assert out.shape == (2,)  # no heads: just the logit


def test_heads_can_read_every_layer():
  config = default.get_config()
  config.data.resolution = 16
  config.model.d_width = 4
  config.model.aux_head_features = 'all'
  _, d, state = _state(config, (5, 3))
  assert state.d_params['classify_0']['kernel'].shape == (4 + 8, 5)  # both layers' pooled maps
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 16, 16, 3))
  labels = jnp.zeros((2, 2), jnp.int32)
  variables = {'params': state.d_params, 'batch_stats': state.d_batch_stats}
  _, (logits_a, logits_b) = d.apply(variables, x, labels, train=False)
  assert logits_a.shape == (2, 5) and logits_b.shape == (2, 3)
  # The first layer's features reach the heads directly, not only through the deeper layers.
  first = state.d_params['classify_0']['kernel'][:4]
  assert float(jnp.abs(first).sum()) > 0


def test_heads_can_have_a_network_of_their_own():
  """'own': the heads read a small conv net that shares nothing with D's trunk, so the class
  logits do not move with the trunk's weights and the real/fake logit not with the net's."""
  config = default.get_config()
  config.data.resolution = 16
  config.model.d_width = 4
  config.model.aux_head_features = 'own'
  config.model.aux_net_width = 2
  _, d, state = _state(config, (5, 3))
  assert state.d_params['classify_0']['kernel'].shape == (2 * 8, 5)  # the net's last stage
  x = jax.random.normal(jax.random.PRNGKey(1), (4, 16, 16, 3))
  labels = jnp.zeros((4, 2), jnp.int32)

  def outputs(params):
    (logit, class_logits), _ = d.apply({'params': params, 'batch_stats': state.d_batch_stats}, x,
                                       labels, train=True, mutable=['batch_stats'])
    return jnp.sum(logit), sum(jnp.sum(c ** 2) for c in class_logits)

  logit_grads = jax.grad(lambda p: outputs(p)[0])(state.d_params)
  class_grads = jax.grad(lambda p: outputs(p)[1])(state.d_params)
  norm = lambda tree: float(sum(jnp.sum(jnp.abs(leaf)) for leaf in jax.tree_util.tree_leaves(tree)))
  assert norm(class_grads['classify_net']) > 0 and norm(class_grads['down_0']) == 0
  assert norm(logit_grads['down_0']) > 0 and norm(logit_grads['classify_net']) == 0


@pytest.mark.parametrize('model', ['dcgan', 'biggan'])
def test_heads_are_found_by_the_interface(model):
  """interface.is_attribute_head marks the heads (and their own net), and nothing else."""
  config = default.get_config()
  config.data.resolution = 16
  config.model.generator = config.model.discriminator = model
  config.model.d_width, config.model.ch = 4, 4
  if model == 'dcgan':
    config.model.aux_head_features = 'own'
    config.model.aux_net_width = 2
  _, _, state = _state(config, (5, 3))
  marked = jax.tree_util.tree_flatten_with_path(state.d_params)[0]
  heads = {jax.tree_util.keystr(p) for p, _ in marked if interface.is_attribute_head(p)}
  assert any('classify_0' in h for h in heads) and any('classify_1' in h for h in heads)
  assert all('classify' in h for h in heads)
  assert len(heads) < len(marked)  # the trunk, the logit and the projection are not heads
  if model == 'dcgan':
    assert any('classify_net' in h for h in heads)


@pytest.mark.parametrize('model', ['dcgan', 'biggan'])
def test_aux_head_features_is_checked_at_build_time(model):
  config = default.get_config()
  config.model.generator = config.model.discriminator = model
  config.model.aux_head_features = 'everything' if model == 'dcgan' else 'all'
  with pytest.raises(ValueError, match='aux_head_features'):
    build_models(config, (2,))


@pytest.mark.parametrize('field,value,match', [
    ('model.generator', 'stylegan9', 'Valid generator names: biggan, dcgan'),
    ('model.discriminator', 'x', 'Valid discriminator names: biggan, dcgan'),
    ('model.d_norm', 'layer', "Valid d_norm names: batch, spectral, none"),
    ('model.upsample_impl', 'magic', 'Valid upsampling implementation names'),
])
def test_unknown_names_list_valid_ones(field, value, match):
  config = default.get_config()
  section, key = field.split('.')
  config[section][key] = value
  with pytest.raises(ValueError, match=match):
    g, d = build_models(config, (2,))
    g.init(jax.random.PRNGKey(0), jnp.zeros((1, 100)), jnp.zeros((1, 1), jnp.int32))


@pytest.mark.parametrize('resolution', [4, 48, 0])
def test_bad_resolution(resolution):
  config = default.get_config()
  config.data.resolution = resolution
  with pytest.raises(ValueError, match='power-of-two resolution'):
    build_models(config, ())  # Before any work is done.
  with pytest.raises(ValueError, match='power-of-two resolution'):
    DCGANGenerator(resolution=resolution).init(jax.random.PRNGKey(0), jnp.zeros((1, 100)), None)


@pytest.mark.parametrize('every_layer', [False, True])
def test_latent_reaches_every_conditional_batchnorm(every_layer):
  """latent_in_every_layer: z modulates each CBN, so G still varies with z without its first layer."""
  config = default.get_config()
  config.data.resolution = 16
  config.model.g_width = 8
  config.model.latent_in_every_layer = every_layer
  g, _, state = _state(config, (3, 2))
  d, e = config.model.latent_dim, config.model.embed_dim
  norms = sorted(k for k in state.g_params if k.startswith('norm_'))
  for name in norms:
    assert state.g_params[name]['gamma']['kernel'].shape[0] == (d if every_layer else 0) + 2 * e
  params = jax.tree_util.tree_map(  # perturb the zero-initialised gains/biases
      lambda x: x + 0.1 * jax.random.normal(jax.random.PRNGKey(1), x.shape), state.g_params)
  params['project']['kernel'] = params['project']['kernel'].at[:d].set(0.0)  # z's first path cut
  z = jax.random.normal(jax.random.PRNGKey(2), (2, d))
  labels = jnp.zeros((2, 2), jnp.int32)
  out = g.apply({'params': params, 'batch_stats': state.g_batch_stats}, z, labels, train=False)
  change = float(jnp.mean(jnp.abs(out[0] - out[1])))
  assert (change > 1e-3) == every_layer, change
