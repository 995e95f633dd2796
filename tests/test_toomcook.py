"""The engine's shared pieces: the CPU-vs-XLA decision and the generated layer classes."""
import jax
import jax.numpy as jnp
import pytest

from gan.models import downconv, toomcook, upconv


def test_fast_path_is_cpu_float32():
  x = jnp.zeros((1, 2, 2, 3), jnp.float32)
  assert toomcook.fast_path(x) == (jax.default_backend() == 'cpu')  # conftest: CPU


@pytest.mark.parametrize('dtype', [jnp.float16, jnp.bfloat16])
def test_fast_path_not_for_half_precision(dtype):
  assert not toomcook.fast_path(jnp.zeros((1, 2, 2, 3), dtype))


def test_layer_classes_keep_their_names():
  """Flax names unnamed submodules after their class; checkpoints depend on it."""
  for registry, suffix in ((upconv.UPSAMPLERS, 'Upsample'), (downconv.DOWNSAMPLERS, 'Downsample')):
    for name in registry.names():
      cls = registry.get(name)
      assert issubclass(cls, toomcook.Stride2Layer) and cls.__name__.endswith(suffix)
  assert upconv.FastUpsample.__name__ == 'FastUpsample'
  assert downconv.Toom4Downsample is downconv.DOWNSAMPLERS.get('toom4')
  assert upconv.ConvTransposeUpsample.__module__ == 'gan.models.upconv'
