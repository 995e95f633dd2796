"""BigGAN-class ResNet generator and discriminator (Brock et al. 2019; SNGAN's ResNets).

The layout of StudioGAN's `big_resnet` and of the PyTorch peer `bench/torch_resnet_ref.py`:

  G: z split into chunks (hierarchical latent): chunk 0 -> linear -> 4x4 map; one chunk per up-block.
     Up-block: CBN, ReLU, nearest 2x upsample, 3x3 conv, CBN, ReLU, 3x3 conv, + 1x1 conv of the
     upsampled input. Then BN, ReLU, 3x3 conv to RGB, tanh. Every CBN's gain and bias come from
     linear layers on [shared attribute embedding (summed over attributes), the block's z chunk].
  D: optimised first block (conv, ReLU, conv, avg pool; shortcut avg pool, 1x1 conv), residual
     down-blocks (ReLU, 3x3 conv, ReLU, 3x3 conv, 2x2 avg pool, + 1x1 conv shortcut), ReLU, global
     sum pool, linear + one projection term per attribute (+ AC-GAN heads, as `dcgan`).
  Optional self-attention block at `attention_resolution` in both. Spectral norm on every weight
  (its u/sigma live in the 'batch_stats' collection, so they are checkpointed with the state);
  orthogonal init; widths `width * channel_multipliers`.

Speed on CPU (float32): "nearest 2x upsample, then 3x3 conv" is exactly a 4x4 stride-2 transposed
conv with a kernel summed from the 3x3 one, and "3x3 conv, then 2x2 average pool" exactly a 4x4
stride-2 conv; both run on the project's Toom-Cook layers (`upconv`, `downconv`). Measured fwd +
both gradients at batch 64 on the shared 2-core machine (Dec 2): up-convs 32x32 64->32 1.30 s ->
0.33 s, 8x8 256->128 0.56 -> 0.11 s; conv + pool 64x64 32->32 0.91 -> 0.30 s, 16x16 128->128
0.27 -> 0.10 s. The remaining stride-1 3x3 convs stay XLA's (faster than im2col + GEMM there:
64x64 32->32 0.47 s against 0.87 s), except on RGB inputs (im2col 0.16 s against 0.25 s).
1x1 shortcuts commute with nearest upsampling and average pooling, so they run at the low
resolution. The parameters stay the 3x3 kernels: the fast path is a speed
choice only, and elsewhere (GPU/TPU, bfloat16) XLA's convolutions run the plain formulation.
"""
import math
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from jax import lax

from gan.models import downconv, toomcook, upconv
from gan.models.interface import ATTRIBUTE_HEADS, FEATURES, INTERMEDIATES
from gan.models.layers import AttributeEmbedding, ProjectionHead

_INIT = nn.initializers.orthogonal()
_DN = ('NHWC', 'HWIO', 'NHWC')
DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}
MIN_RESOLUTION = 16  # Two up-blocks; 32 and up are the resolutions this architecture is for.

# Per spatial axis: the 4x4 stride-2 kernel as a linear map of the 3x3 one (rows: 4x4 taps).
# Nearest 2x upsample + 3x3 conv (pad 1): y[2m] = w0 x[m-1] + (w1 + w2) x[m],
# y[2m+1] = (w0 + w1) x[m] + w2 x[m+1]; upconv's kernel scatters y[2i - 1 + k] += K[k] x[i].
_UP_TAPS = np.array([[0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0]], np.float32)
# 3x3 conv (pad 1) + 2x2 average pool: y[i] = sum_k K[k] x[2i - 1 + k], K[k] = (w[k] + w[k-1]) / 2.
_DOWN_TAPS = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1]], np.float32) / 2


def num_blocks(resolution: int) -> int:
  """Up-blocks of G (4x4 -> resolution); D has one more down-block (resolution -> 2x2)."""
  if resolution < MIN_RESOLUTION or resolution & (resolution - 1):
    raise ValueError(f'The biggan networks need a power-of-two resolution >= {MIN_RESOLUTION} '
                     f'(32, 64, 128, ...), got {resolution}. Set --config.data.resolution.')
  return int(math.log2(resolution)) - 2


def default_channel_multipliers(resolution: int) -> tuple:
  """Width multipliers from the 4x4 map up to `resolution`: min(16, resolution / size).

  64: (16, 8, 4, 2, 1) as the PyTorch peer; 128: (16, 16, 8, 4, 2, 1) as BigGAN-128.
  """
  n = num_blocks(resolution)
  return tuple(min(16, resolution // 2 ** (2 + i)) for i in range(n + 1))


def channel_multipliers(resolution: int, multipliers: Optional[Sequence[int]]) -> tuple:
  """The configured multipliers (None = default), checked: one per size from 4x4 to resolution."""
  if multipliers is None:
    return default_channel_multipliers(resolution)
  multipliers = tuple(int(m) for m in multipliers)
  n = num_blocks(resolution) + 1
  if len(multipliers) != n or min(multipliers) < 1:
    raise ValueError(f'model.channel_multipliers needs {n} positive integers at resolution '
                     f'{resolution} (one per size 4, 8, ..., {resolution}; G from 4x4 up, D in '
                     f'reverse), got {multipliers}. Use None for the default '
                     f'{default_channel_multipliers(resolution)}.')
  return multipliers


def check_attention_resolution(resolution: int, attention: int) -> None:
  if attention and (attention < 8 or attention > resolution // 2 or attention & (attention - 1)):
    raise ValueError(f'model.attention_resolution must be 0 (off) or a power of two from 8 to '
                     f'{resolution // 2} (half the image size) at resolution {resolution}, '
                     f'got {attention}.')


def z_chunks(latent_dim: int, n_chunks: int) -> list:
  """Sizes of the hierarchical latent's chunks (as even as possible, the first ones larger)."""
  if latent_dim < n_chunks:
    raise ValueError(f'model.latent_dim must be >= {n_chunks} for the biggan generator (one '
                     f'chunk for the 4x4 map and one per up-block), got {latent_dim}.')
  return [len(c) for c in np.array_split(np.arange(latent_dim), n_chunks)]


def _sn(layer, name, train, *args):
  """`layer(*args)` with its weights spectrally normalised (u and sigma in 'batch_stats')."""
  return nn.SpectralNorm(layer, name=name)(*args, update_stats=train)


# --------------------------------------------------------------------------------------------
# 3x3 convolutions: plain, after a nearest 2x upsample, before a 2x2 average pool.

def conv3x3_reference(x, kernel):
  return lax.conv_general_dilated(x, kernel, (1, 1), ((1, 1), (1, 1)), dimension_numbers=_DN)


def upsample_nearest(x):
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def avg_pool2(x):
  n, h, w, c = x.shape
  return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def taps_4x4(taps, kernel):
  """The 4x4 stride-2 kernel equal to the 3x3 `kernel` composed with a resampling (taps [4, 3])."""
  taps = jnp.asarray(taps, kernel.dtype)
  return jnp.einsum('ai,bj,ijco->abco', taps, taps, kernel)


def im2col_conv3x3(x, kernel):
  """The 3x3 conv as one GEMM over the 9 shifted copies: faster than XLA's on RGB inputs."""
  n, h, w, c = x.shape
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  cols = jnp.concatenate([xp[:, i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=-1)
  return (cols.reshape(-1, 9 * c) @ kernel.reshape(9 * c, -1)).reshape(n, h, w, -1)


def conv3x3(x, kernel):
  if toomcook.fast_path(x) and x.shape[-1] <= 4:
    return im2col_conv3x3(x, kernel)
  return conv3x3_reference(x, kernel)


def up_conv3x3(x, kernel):
  """conv3x3(upsample_nearest(x)): on the CPU fast path, one fast 4x4 transposed conv."""
  if not toomcook.fast_path(x):
    return conv3x3_reference(upsample_nearest(x), kernel)
  n, h, w, c = x.shape
  scheme = upconv.choose_scheme(h, w, c, kernel.shape[-1])
  return upconv.fast_conv_transpose(x, taps_4x4(_UP_TAPS, kernel), scheme,
                                    toomcook.choose_chunks(scheme, n, h, w))


def conv3x3_down(x, kernel):
  """avg_pool2(conv3x3(x)): on the CPU fast path, one fast 4x4 stride-2 conv."""
  if not toomcook.fast_path(x):
    return avg_pool2(conv3x3_reference(x, kernel))
  n, h, w, c = x.shape
  scheme = downconv.choose_scheme(h, w, c, kernel.shape[-1])
  return downconv.fast_conv(x, taps_4x4(_DOWN_TAPS, kernel), scheme,
                            toomcook.choose_chunks(scheme, n, h // 2, w // 2))


_RESAMPLED_CONVS = {'none': conv3x3, 'up': up_conv3x3, 'down': conv3x3_down}


class Conv3x3(nn.Module):
  """3x3 conv (padding 1) with bias, optionally after a nearest 2x upsample ('up') or before a
  2x2 average pool ('down'). Parameters 'kernel' [3, 3, Cin, features], 'bias' [features]
  (float32), computed in `dtype`."""
  features: int
  resample: str = 'none'
  dtype: Any = jnp.float32
  use_bias: bool = True

  @nn.compact
  def __call__(self, x):
    kernel = self.param('kernel', _INIT, (3, 3, x.shape[-1], self.features), jnp.float32)
    x = x.astype(self.dtype)
    y = _RESAMPLED_CONVS[self.resample](x, kernel.astype(self.dtype))
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros, (self.features,), jnp.float32).astype(y.dtype)
    return y


def _conv1x1(features, name, use_bias=True, dtype=jnp.float32):
  return nn.Conv(features, (1, 1), use_bias=use_bias, kernel_init=_INIT, dtype=dtype,
                 param_dtype=jnp.float32, name=name)


# --------------------------------------------------------------------------------------------
# Blocks.

class ConditionalBN(nn.Module):
  """BatchNorm without affine parameters, then x * (1 + gain(cond)) + bias(cond): gain and bias
  are spectrally normalised linear maps (no bias) of the block's conditioning vector."""
  axis_name: Optional[str] = None
  momentum: float = 0.9
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, cond, train: bool):
    c = x.shape[-1]
    x = nn.BatchNorm(use_running_average=not train, momentum=self.momentum, epsilon=1e-5,
                     use_scale=False, use_bias=False, dtype=self.dtype,
                     axis_name=self.axis_name if train else None, name='bn')(x)
    linear = lambda name: nn.Dense(c, use_bias=False, kernel_init=_INIT, name=name)
    gain = _sn(linear('gain'), 'sn_gain', train, cond).astype(self.dtype)
    bias = _sn(linear('bias'), 'sn_bias', train, cond).astype(self.dtype)
    return x * (1 + gain[:, None, None, :]) + bias[:, None, None, :]


class GBlock(nn.Module):
  """No biases: every path from a G block to the image passes a BatchNorm, and a per-channel
  constant stays constant through the 1x1 shortcuts and upsampling until a BatchNorm cancels it.
  Their true gradient is zero, and the rounding noise that is left Adam would amplify to
  full-size steps (the PyTorch peer keeps these useless biases: 0.3% of G's parameters)."""
  features: int
  axis_name: Optional[str] = None
  bn_momentum: float = 0.9
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, cond, train: bool):
    cbn = lambda name: ConditionalBN(self.axis_name, self.bn_momentum, self.dtype, name=name)
    h = nn.relu(cbn('cbn_1')(x, cond, train))
    h = _sn(Conv3x3(self.features, 'up', self.dtype, use_bias=False, name='conv_1'), 'sn_conv_1',
            train, h)
    h = nn.relu(cbn('cbn_2')(h, cond, train))
    h = _sn(Conv3x3(self.features, 'none', self.dtype, use_bias=False, name='conv_2'),
            'sn_conv_2', train, h)
    # conv1x1(upsample(x)) == upsample(conv1x1(x)): the shortcut runs at the low resolution.
    shortcut = _sn(_conv1x1(self.features, 'shortcut', False, self.dtype),
                   'sn_shortcut', train, x.astype(self.dtype))
    return h + upsample_nearest(shortcut)


class DBlock(nn.Module):
  features: int
  first: bool = False  # The optimised first block: no ReLU on the image, shortcut pools first.
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    x = x.astype(self.dtype)
    h = x if self.first else nn.relu(x)
    h = _sn(Conv3x3(self.features, 'none', self.dtype, name='conv_1'), 'sn_conv_1', train, h)
    h = _sn(Conv3x3(self.features, 'down', self.dtype, name='conv_2'), 'sn_conv_2', train,
            nn.relu(h))
    # avg_pool(conv1x1(x)) == conv1x1(avg_pool(x)): pool first in every block (4x fewer FLOPs).
    shortcut = _sn(_conv1x1(self.features, 'shortcut', dtype=self.dtype), 'sn_shortcut', train,
                   avg_pool2(x))
    return h + shortcut


class SelfAttention(nn.Module):
  """BigGAN's non-local block: x + gamma * o(softmax(theta phi^T) g), phi and g max-pooled 2x2,
  gamma starting at 0 (the block starts as the identity)."""
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    n, h, w, c = x.shape
    x = x.astype(self.dtype)
    proj = lambda f, name, inp: _sn(_conv1x1(f, name, use_bias=False, dtype=self.dtype),
                                    f'sn_{name}', train, inp)
    pool = lambda t: nn.max_pool(t, (2, 2), (2, 2))
    theta = proj(max(c // 8, 1), 'theta', x).reshape(n, h * w, -1)
    phi = pool(proj(max(c // 8, 1), 'phi', x)).reshape(n, h * w // 4, -1)
    g = pool(proj(max(c // 2, 1), 'g', x)).reshape(n, h * w // 4, -1)
    attention = nn.softmax(jnp.einsum('nqc,nkc->nqk', theta, phi).astype(jnp.float32), axis=-1)
    o = jnp.einsum('nqk,nkc->nqc', attention.astype(self.dtype), g).reshape(n, h, w, -1)
    o = proj(c, 'o', o)
    gamma = self.param('gamma', nn.initializers.zeros, (), jnp.float32)
    return x + gamma.astype(self.dtype) * o


# --------------------------------------------------------------------------------------------
# The networks.

class BigGANGenerator(nn.Module):
  """G(z [N, latent_dim], labels int [N, A], train) -> images [N, R, R, 3] float32 in [-1, 1].

  Implements the model interface (gan/models/interface.py); labels may be soft.
  """
  latent_dim: int = 120
  resolution: int = 64
  width: int = 32                    # model.ch
  num_classes: Sequence[int] = ()
  embed_dim: int = 128               # Shared attribute embedding width.
  channel_multipliers: Optional[Sequence[int]] = None
  attention_resolution: int = 0
  out_channels: int = 3
  axis_name: Optional[str] = None
  bn_momentum: float = 0.9
  dtype: Any = jnp.float32

  def __post_init__(self):
    channel_multipliers(self.resolution, self.channel_multipliers)  # Bad sizes fail at build time.
    check_attention_resolution(self.resolution, self.attention_resolution)
    z_chunks(self.latent_dim, num_blocks(self.resolution) + 1)
    super().__post_init__()

  def latent_weight(self, variables) -> np.ndarray:
    """Every layer z reaches, as applied (kernel / its spectral norm's sigma): [latent_dim, k].

    Chunk 0 feeds 'linear'; chunk i + 1 feeds the gain and bias maps of block i's two CBNs, whose
    input is [shared embedding, chunk] (just the chunk when unconditional). Each layer's columns
    are zero in the rows of the chunks it does not read (SeFa for BigGAN stacks them all).
    """
    params, stats = variables['params'], variables.get('batch_stats', {})
    sizes = z_chunks(self.latent_dim, num_blocks(self.resolution) + 1)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    skip = self.embed_dim if self.num_classes else 0  # The shared embedding's rows come first.

    def applied(p, s, name, sn_name, rows):
      kernel = np.asarray(p[name]['kernel'], np.float64)[rows]
      sigma = s.get(sn_name, {}).get(f'{name}/kernel/sigma')
      return kernel / float(sigma) if sigma is not None else kernel

    parts = [(0, applied(params, stats, 'linear', 'sn_linear', slice(0, sizes[0])))]
    for i in range(len(sizes) - 1):
      block, block_stats = params[f'block_{i}'], stats.get(f'block_{i}', {})
      rows = slice(skip, skip + sizes[i + 1])
      for cbn in ('cbn_1', 'cbn_2'):
        for name in ('gain', 'bias'):
          parts.append((i + 1, applied(block[cbn], block_stats.get(cbn, {}), name, f'sn_{name}',
                                       rows)))
    columns = []
    for chunk, kernel in parts:
      full = np.zeros((self.latent_dim, kernel.shape[1]))
      full[starts[chunk]:starts[chunk + 1]] = kernel
      columns.append(full)
    return np.concatenate(columns, axis=1)

  @nn.compact
  def __call__(self, z, labels, train: bool = True):
    if z.shape[-1] != self.latent_dim:
      raise ValueError(f'The generator takes z of length latent_dim={self.latent_dim}; got shape '
                       f'{z.shape}.')
    widths = [self.width * m for m in channel_multipliers(self.resolution,
                                                          self.channel_multipliers)]
    n_blocks = len(widths) - 1
    sizes = np.cumsum(z_chunks(z.shape[-1], n_blocks + 1))[:-1]
    chunks = jnp.split(z, sizes, axis=-1)
    shared = None
    if self.num_classes:  # One embedding per attribute ('unspecified' row included), summed.
      parts = AttributeEmbedding(self.num_classes, self.embed_dim, name='shared')(labels)
      shared = parts.reshape(z.shape[0], len(self.num_classes), self.embed_dim).sum(axis=1)
    h = _sn(nn.Dense(4 * 4 * widths[0], kernel_init=_INIT, name='linear'), 'sn_linear', train,
            chunks[0])
    h = h.reshape(z.shape[0], 4, 4, widths[0]).astype(self.dtype)
    for i in range(n_blocks):
      cond = chunks[i + 1] if shared is None else jnp.concatenate([shared, chunks[i + 1]], -1)
      h = GBlock(widths[i + 1], self.axis_name, self.bn_momentum, self.dtype,
                 name=f'block_{i}')(h, cond, train)
      if h.shape[1] == self.attention_resolution:
        h = SelfAttention(self.dtype, name='attention')(h, train)
    h = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum, epsilon=1e-5,
                     dtype=self.dtype, axis_name=self.axis_name if train else None,
                     name='bn_out')(h)
    h = _sn(Conv3x3(self.out_channels, 'none', self.dtype, name='conv_out'), 'sn_conv_out', train,
            nn.relu(h))
    return jnp.tanh(h.astype(jnp.float32))


class BigGANDiscriminator(nn.Module):
  """D(x, labels, train) -> logit [N] (+ projection when conditional), or (logit, class_logits)
  with aux_classifier: one [N, num_classes[a]] array per attribute (AC-GAN heads, as `dcgan`)."""
  resolution: int = 64
  width: int = 32                    # model.ch
  num_classes: Sequence[int] = ()
  channel_multipliers: Optional[Sequence[int]] = None
  attention_resolution: int = 0
  aux_classifier: bool = False
  dtype: Any = jnp.float32

  def __post_init__(self):
    channel_multipliers(self.resolution, self.channel_multipliers)
    check_attention_resolution(self.resolution, self.attention_resolution)
    super().__post_init__()

  @nn.compact
  def __call__(self, x, labels, train: bool = True):
    multipliers = channel_multipliers(self.resolution, self.channel_multipliers)
    h = x
    for i, m in enumerate(reversed(multipliers)):  # resolution -> 2x2
      h = DBlock(self.width * m, first=i == 0, dtype=self.dtype, name=f'block_{i}')(h, train)
      if h.shape[1] == self.attention_resolution:
        h = SelfAttention(self.dtype, name='attention')(h, train)
      self.sow(INTERMEDIATES, FEATURES, h)  # The interface's named features: each block's output.
    features = jnp.sum(nn.relu(h).astype(jnp.float32), axis=(1, 2))  # global sum pool
    out = _sn(nn.Dense(1, kernel_init=_INIT, name='linear'), 'sn_linear', train, features)[:, 0]
    if not self.num_classes:
      return out
    out = out + _sn(ProjectionHead(self.num_classes, name='projection'), 'sn_projection', train,
                    features, labels)
    if not self.aux_classifier:
      return out
    pooled = features / (h.shape[1] * h.shape[2])  # the mean over positions
    class_logits = tuple(
        _sn(nn.Dense(n, kernel_init=_INIT, name=f'{ATTRIBUTE_HEADS}_{a}'),
            f'sn_{ATTRIBUTE_HEADS}_{a}', train,
            pooled) for a, n in enumerate(self.num_classes))
    return out, class_logits
