"""Inception-V3 pool3 features for literature-comparable FID / KID (flax linen).

This is the network of the reference FID implementations (TF `inception-2015-12-05`
as ported by pytorch-fid's `fid_inception_v3`): torchvision's Inception-V3 with
the FID patches (average pools that exclude padding in Mixed_5b..Mixed_7b and a
max pool in the last block, Mixed_7c), cut at the 2048-d global average pool
("pool3"). Inputs are [N, H, W, 3] images in [-1, 1] (or uint8, converted),
resized bilinearly to 299x299 as pytorch-fid does.

No weights ship with the code and nothing is downloaded: `load_inception(path)`
reads a local .npz (or .pkl) of named arrays.

Weights file format
-------------------
One array per key, named and laid out exactly as in the PyTorch state dict of
pytorch-fid's FID Inception (`pt_inception-2015-12-05-6726825d.pth`), e.g.

  Conv2d_1a_3x3.conv.weight          [32, 3, 3, 3]   (conv: [out, in, kh, kw])
  Conv2d_1a_3x3.bn.weight            [32]            (BatchNorm scale)
  Conv2d_1a_3x3.bn.bias              [32]
  Conv2d_1a_3x3.bn.running_mean      [32]
  Conv2d_1a_3x3.bn.running_var       [32]
  Mixed_5b.branch1x1.conv.weight     [64, 192, 1, 1]
  Mixed_5b.branch_pool.bn.running_var [32]
  ...
  Mixed_7c.branch_pool.conv.weight   [192, 2048, 1, 1]

i.e. `<block>.<layer>.conv.weight` and `<block>.<layer>.bn.{weight,bias,
running_mean,running_var}` for every conv layer of the network (94 layers, 470
arrays; `expected_weight_shapes()` lists them all). Keys the features do not
use (`fc.*`, `AuxLogits.*`, `*.num_batches_tracked`) are ignored. The loader
transposes conv weights to flax's [kh, kw, in, out] itself.

Export (on a machine with torch and the pytorch-fid weights file; run once)::

  # pip install torch; get pt_inception-2015-12-05-6726825d.pth from the
  # pytorch-fid GitHub release "fid_weights" (pytorch_fid.inception.FID_WEIGHTS_URL).
  import numpy as np, torch
  sd = torch.load('pt_inception-2015-12-05-6726825d.pth', map_location='cpu')
  np.savez('pt_inception-2015-12-05.npz',
           **{k: v.numpy() for k, v in sd.items() if not k.endswith('num_batches_tracked')})

A .pkl must hold a plain dict of the same names -> numpy arrays; unpickling
runs code, so load only pickles you made yourself (prefer .npz).

(If you saved the state dict of pytorch-fid's `InceptionV3` wrapper instead,
its keys start with `blocks.N.`; use the `fid_inception_v3()` module's keys as
above.) `save_inception_weights(variables, path)` writes the same format from
flax variables.
"""
import functools
import os
import pickle
import warnings
from typing import Dict, Optional, Tuple

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

RESOLUTION = 299
FEATURE_DIM = 2048
# Keys of the torch state dict the features do not need.
_IGNORED_PREFIXES = ('fc.', 'AuxLogits.')
_IGNORED_SUFFIXES = ('num_batches_tracked',)
# flax (collection, leaf) <-> torch suffix of a BasicConv2d.
_LEAF_TO_TORCH = {('params', 'conv', 'kernel'): 'conv.weight',
                  ('params', 'bn', 'scale'): 'bn.weight',
                  ('params', 'bn', 'bias'): 'bn.bias',
                  ('batch_stats', 'bn', 'mean'): 'bn.running_mean',
                  ('batch_stats', 'bn', 'var'): 'bn.running_var'}


# ----------------------------------------------------------------------------- network


class BasicConv(nn.Module):
  """Conv (no bias) -> BatchNorm (eps 1e-3, inference statistics) -> ReLU."""
  features: int
  kernel_size: Tuple[int, int]
  strides: int = 1
  padding: Tuple[int, int] = (0, 0)
  precision: Optional[str] = 'highest'

  @nn.compact
  def __call__(self, x):
    ph, pw = self.padding
    x = nn.Conv(self.features, self.kernel_size, strides=(self.strides, self.strides),
                padding=((ph, ph), (pw, pw)), use_bias=False, precision=self.precision,
                name='conv')(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name='bn')(x)
    return nn.relu(x)


def _avg_pool_3x3(x):
  # TF's average pool (and pytorch-fid's patch) leaves the padding out of the mean.
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3_s2(x):
  return nn.max_pool(x, (3, 3), strides=(2, 2), padding='VALID')


class InceptionA(nn.Module):
  pool_features: int
  precision: Optional[str] = 'highest'

  @nn.compact
  def __call__(self, x):
    conv = functools.partial(BasicConv, precision=self.precision)
    b1 = conv(64, (1, 1), name='branch1x1')(x)
    b5 = conv(48, (1, 1), name='branch5x5_1')(x)
    b5 = conv(64, (5, 5), padding=(2, 2), name='branch5x5_2')(b5)
    b3 = conv(64, (1, 1), name='branch3x3dbl_1')(x)
    b3 = conv(96, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(b3)
    b3 = conv(96, (3, 3), padding=(1, 1), name='branch3x3dbl_3')(b3)
    bp = conv(self.pool_features, (1, 1), name='branch_pool')(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  precision: Optional[str] = 'highest'

  @nn.compact
  def __call__(self, x):
    conv = functools.partial(BasicConv, precision=self.precision)
    b3 = conv(384, (3, 3), strides=2, name='branch3x3')(x)
    bd = conv(64, (1, 1), name='branch3x3dbl_1')(x)
    bd = conv(96, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(bd)
    bd = conv(96, (3, 3), strides=2, name='branch3x3dbl_3')(bd)
    return jnp.concatenate([b3, bd, _max_pool_3x3_s2(x)], axis=-1)


class InceptionC(nn.Module):
  channels_7x7: int
  precision: Optional[str] = 'highest'

  @nn.compact
  def __call__(self, x):
    conv = functools.partial(BasicConv, precision=self.precision)
    c7 = self.channels_7x7
    b1 = conv(192, (1, 1), name='branch1x1')(x)
    b7 = conv(c7, (1, 1), name='branch7x7_1')(x)
    b7 = conv(c7, (1, 7), padding=(0, 3), name='branch7x7_2')(b7)
    b7 = conv(192, (7, 1), padding=(3, 0), name='branch7x7_3')(b7)
    bd = conv(c7, (1, 1), name='branch7x7dbl_1')(x)
    bd = conv(c7, (7, 1), padding=(3, 0), name='branch7x7dbl_2')(bd)
    bd = conv(c7, (1, 7), padding=(0, 3), name='branch7x7dbl_3')(bd)
    bd = conv(c7, (7, 1), padding=(3, 0), name='branch7x7dbl_4')(bd)
    bd = conv(192, (1, 7), padding=(0, 3), name='branch7x7dbl_5')(bd)
    bp = conv(192, (1, 1), name='branch_pool')(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  precision: Optional[str] = 'highest'

  @nn.compact
  def __call__(self, x):
    conv = functools.partial(BasicConv, precision=self.precision)
    b3 = conv(192, (1, 1), name='branch3x3_1')(x)
    b3 = conv(320, (3, 3), strides=2, name='branch3x3_2')(b3)
    b7 = conv(192, (1, 1), name='branch7x7x3_1')(x)
    b7 = conv(192, (1, 7), padding=(0, 3), name='branch7x7x3_2')(b7)
    b7 = conv(192, (7, 1), padding=(3, 0), name='branch7x7x3_3')(b7)
    b7 = conv(192, (3, 3), strides=2, name='branch7x7x3_4')(b7)
    return jnp.concatenate([b3, b7, _max_pool_3x3_s2(x)], axis=-1)


class InceptionE(nn.Module):
  pool: str = 'avg'  # the FID network's last block (Mixed_7c) max-pools instead
  precision: Optional[str] = 'highest'

  @nn.compact
  def __call__(self, x):
    conv = functools.partial(BasicConv, precision=self.precision)
    b1 = conv(320, (1, 1), name='branch1x1')(x)
    b3 = conv(384, (1, 1), name='branch3x3_1')(x)
    b3 = jnp.concatenate([conv(384, (1, 3), padding=(0, 1), name='branch3x3_2a')(b3),
                          conv(384, (3, 1), padding=(1, 0), name='branch3x3_2b')(b3)], axis=-1)
    bd = conv(448, (1, 1), name='branch3x3dbl_1')(x)
    bd = conv(384, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(bd)
    bd = jnp.concatenate([conv(384, (1, 3), padding=(0, 1), name='branch3x3dbl_3a')(bd),
                          conv(384, (3, 1), padding=(1, 0), name='branch3x3dbl_3b')(bd)], axis=-1)
    if self.pool == 'avg':
      pooled = _avg_pool_3x3(x)
    else:
      pooled = nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
    bp = conv(192, (1, 1), name='branch_pool')(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class InceptionV3(nn.Module):
  """FID Inception-V3 up to pool3: [N, H, W, 3] in [-1, 1] -> [N, 2048].

  Attributes:
    resize_input: resize to 299x299 (bilinear, half-pixel centres, no
      antialiasing: what pytorch-fid's F.interpolate(align_corners=False)
      does). Turn off only for inputs already at 299.
    precision: matmul precision of the convolutions; 'highest' keeps results
      the same on CPU, GPU (no TF32) and TPU (no bf16 passes).
  """
  resize_input: bool = True
  precision: Optional[str] = 'highest'

  @nn.compact
  def __call__(self, x):
    if self.resize_input:
      x = jax.image.resize(x, (x.shape[0], RESOLUTION, RESOLUTION, x.shape[3]), 'bilinear',
                           antialias=False)
    p = self.precision
    conv = functools.partial(BasicConv, precision=p)
    x = conv(32, (3, 3), strides=2, name='Conv2d_1a_3x3')(x)
    x = conv(32, (3, 3), name='Conv2d_2a_3x3')(x)
    x = conv(64, (3, 3), padding=(1, 1), name='Conv2d_2b_3x3')(x)
    x = _max_pool_3x3_s2(x)
    x = conv(80, (1, 1), name='Conv2d_3b_1x1')(x)
    x = conv(192, (3, 3), name='Conv2d_4a_3x3')(x)
    x = _max_pool_3x3_s2(x)
    x = InceptionA(32, p, name='Mixed_5b')(x)
    x = InceptionA(64, p, name='Mixed_5c')(x)
    x = InceptionA(64, p, name='Mixed_5d')(x)
    x = InceptionB(p, name='Mixed_6a')(x)
    x = InceptionC(128, p, name='Mixed_6b')(x)
    x = InceptionC(160, p, name='Mixed_6c')(x)
    x = InceptionC(160, p, name='Mixed_6d')(x)
    x = InceptionC(192, p, name='Mixed_6e')(x)
    x = InceptionD(p, name='Mixed_7a')(x)
    x = InceptionE('avg', p, name='Mixed_7b')(x)
    x = InceptionE('max', p, name='Mixed_7c')(x)
    return jnp.mean(x, axis=(1, 2))


# ----------------------------------------------------------------------------- weights


def _variable_shapes(module: InceptionV3):
  return _variable_shapes_cached(module.resize_input, module.precision)


@functools.lru_cache(maxsize=None)
def _variable_shapes_cached(resize_input: bool, precision: Optional[str]):
  module = InceptionV3(resize_input=resize_input, precision=precision)
  dummy = jax.ShapeDtypeStruct((1, RESOLUTION, RESOLUTION, 3), jnp.float32)
  return jax.eval_shape(module.init, jax.random.PRNGKey(0), dummy)


def _torch_name(collection: str, path: Tuple[str, ...]) -> str:
  """('params', ('Mixed_5b', 'branch1x1', 'conv', 'kernel')) -> 'Mixed_5b.branch1x1.conv.weight'."""
  *layer, module, leaf = path
  return '.'.join(layer) + '.' + _LEAF_TO_TORCH[(collection, module, leaf)]


def _torch_layout(flax_shape: Tuple[int, ...]) -> Tuple[int, ...]:
  if len(flax_shape) == 4:  # [kh, kw, in, out] -> [out, in, kh, kw]
    return (flax_shape[3], flax_shape[2], flax_shape[0], flax_shape[1])
  return tuple(flax_shape)


def expected_weight_shapes(module: Optional[InceptionV3] = None) -> Dict[str, Tuple[int, ...]]:
  """Every key a weights file must hold, with its shape in the torch layout."""
  shapes = _variable_shapes(module or InceptionV3())
  out = {}
  for collection in ('params', 'batch_stats'):
    for path, leaf in flax.traverse_util.flatten_dict(shapes[collection]).items():
      out[_torch_name(collection, path)] = _torch_layout(leaf.shape)
  return out


def _read_named_arrays(path: str) -> Dict[str, np.ndarray]:
  if not path.endswith(('.npz', '.pkl', '.pickle')):
    raise ValueError(f'{path!r}: unknown weights file type; use a .npz (or .pkl) of named arrays.')
  try:
    if path.endswith('.npz'):
      with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
    with open(path, 'rb') as f:
      arrays = pickle.load(f)
  except Exception as e:  # zip / pickle / numpy errors of a damaged or foreign file
    raise ValueError(f'Could not read Inception weights from {path!r}: {e}') from e
  if not isinstance(arrays, dict):
    raise ValueError(f'{path!r} must hold a dict of name -> array, got {type(arrays).__name__}.')
  return {str(k): np.asarray(v) for k, v in arrays.items()}


def _summarise(items, limit: int = 12) -> str:
  items = sorted(items)
  shown = ', '.join(items[:limit])
  return shown + (f', ... ({len(items)} in all)' if len(items) > limit else '')


def load_inception(path: str, resize_input: bool = True,
                   precision: Optional[str] = 'highest') -> Tuple[InceptionV3, dict]:
  """Builds the FID Inception-V3 and loads its weights from a local file.

  Args:
    path: .npz or .pkl of named arrays in the format of this module's docstring.
    resize_input, precision: see InceptionV3.

  Returns:
    (module, variables) for `inception_features` (or `module.apply`).

  Raises:
    FileNotFoundError: no file at `path` (the message says how to make one).
    ValueError: unreadable file, or keys missing / unexpected / of the wrong
      shape (each listed by name).
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f'No Inception weights at {path!r}. Nothing is downloaded: export pytorch-fid\'s '
        'pt_inception-2015-12-05 weights to an .npz once (see the docstring of '
        'gan.evaluation.inception) and pass its path.')
  arrays = _read_named_arrays(path)

  if 'fc.weight' in arrays and np.shape(arrays['fc.weight'])[0] != 1008:
    warnings.warn(f'{path!r} has a {np.shape(arrays["fc.weight"])[0]}-class fc layer; the FID '
                  'Inception has 1008. These look like other (e.g. torchvision ImageNet) weights, '
                  'so FID values will not be comparable with the literature.')
  arrays = {k: v for k, v in arrays.items()
            if not k.startswith(_IGNORED_PREFIXES) and not k.endswith(_IGNORED_SUFFIXES)}

  module = InceptionV3(resize_input=resize_input, precision=precision)
  expected = expected_weight_shapes(module)
  missing = set(expected) - set(arrays)
  unexpected = set(arrays) - set(expected)
  wrong = [f'{k} (file {tuple(np.shape(arrays[k]))}, expected {expected[k]})'
           for k in set(expected) & set(arrays) if tuple(np.shape(arrays[k])) != expected[k]]
  if missing or unexpected or wrong:
    parts = [f'{label}: {_summarise(items)}' for label, items in
             (('missing keys', missing), ('unexpected keys', unexpected), ('wrong shapes', wrong))
             if items]
    raise ValueError(f'{path!r} does not match the FID Inception-V3 ({len(expected)} arrays '
                     'named as in pytorch-fid\'s state dict): ' + '; '.join(parts) + '.')

  shapes = _variable_shapes(module)
  variables = {}
  for collection in ('params', 'batch_stats'):
    flat = {}
    for p in flax.traverse_util.flatten_dict(shapes[collection]):
      value = np.asarray(arrays[_torch_name(collection, p)], np.float32)
      flat[p] = value.transpose(2, 3, 1, 0) if value.ndim == 4 else value  # OIHW -> HWIO
    variables[collection] = flax.traverse_util.unflatten_dict(flat)
  return module, jax.device_put(variables)


def save_inception_weights(variables, path: str):
  """Writes flax Inception variables as an .npz (or .pkl) in the documented torch-named format."""
  path = os.fspath(path)
  arrays = {}
  for collection in ('params', 'batch_stats'):
    for p, value in flax.traverse_util.flatten_dict(jax.device_get(variables[collection])).items():
      value = np.asarray(value, np.float32)
      arrays[_torch_name(collection, p)] = value.transpose(3, 2, 0, 1) if value.ndim == 4 else value
  if path.endswith('.npz'):
    np.savez(path, **arrays)
  elif path.endswith(('.pkl', '.pickle')):
    with open(path, 'wb') as f:
      pickle.dump(arrays, f)
  else:
    raise ValueError(f'{path!r}: use a .npz or .pkl file name.')


def random_variables(module: Optional[InceptionV3] = None, seed: int = 0) -> dict:
  """Random (untrained) variables, drawn with numpy: for tests and benchmarks only.

  He-normal kernels and randomised BatchNorm statistics, so activations stay
  O(1) through the 94 layers and every array has distinct values. numpy keeps
  this free of the threefry compile, which is very slow on XLA CPU.
  """
  shapes = _variable_shapes(module or InceptionV3())
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    name = path[-1].key
    if name == 'kernel':
      fan_in = int(np.prod(leaf.shape[:-1]))
      return (rng.standard_normal(leaf.shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    if name in ('scale', 'var'):
      return rng.uniform(0.5, 1.5, leaf.shape).astype(np.float32)
    return (0.1 * rng.standard_normal(leaf.shape)).astype(np.float32)  # bias, mean
  return jax.tree_util.tree_map_with_path(draw, shapes)


# ----------------------------------------------------------------------------- features


@functools.lru_cache(maxsize=None)
def _forward(resize_input: bool, precision: Optional[str]):
  """One jitted forward per module configuration (compiling Inception is slow)."""
  module = InceptionV3(resize_input=resize_input, precision=precision)
  return jax.jit(lambda variables, x: module.apply(variables, x))


def _to_input(images: np.ndarray) -> np.ndarray:
  if images.dtype == np.uint8:
    return images.astype(np.float32) / 127.5 - 1.0
  if not np.issubdtype(images.dtype, np.floating):
    raise ValueError(f'images must be uint8 or floats in [-1, 1], got dtype {images.dtype}.')
  x = images.astype(np.float32, copy=False)
  lo, hi = float(x.min()), float(x.max())
  if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -1.001 or hi > 1.001:
    raise ValueError(f'Float images must lie in [-1, 1], got values in [{lo:.4g}, {hi:.4g}]; '
                     'convert [0, 1] images with 2 * x - 1.')
  return x


def inception_features(module: InceptionV3, variables, images, batch_size: int = 50) -> np.ndarray:
  """Pool3 features float64 [N, 2048] of images [N, H, W, 3] (uint8 or floats in [-1, 1]).

  Runs jitted in batches of `batch_size` (the last one padded, so one compile
  serves every call with the same batch size and image size).
  """
  images = np.asarray(images)
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f'images must be [N, H, W, 3], got shape {images.shape}.')
  if not module.resize_input and images.shape[1:3] != (RESOLUTION, RESOLUTION):
    raise ValueError(f'This module does not resize; images must be {RESOLUTION}x{RESOLUTION}, got '
                     f'{images.shape[1]}x{images.shape[2]}.')
  if batch_size < 1:
    raise ValueError(f'batch_size must be >= 1, got {batch_size}.')
  fn = _forward(module.resize_input, module.precision)
  n = images.shape[0]
  size = max(1, min(batch_size, n))
  out = np.empty((n, FEATURE_DIM), np.float64)
  for start in range(0, n, size):
    x = _to_input(images[start:start + size])
    count = x.shape[0]
    if count < size:
      x = np.concatenate([x, np.zeros((size - count,) + x.shape[1:], x.dtype)])
    out[start:start + count] = jax.device_get(fn(variables, x))[:count]
  return out
