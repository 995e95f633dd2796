"""4x4 stride-2 convolutions (the DCGAN downsampling layer), fast on XLA CPU.

Every implementation in `DOWNSAMPLERS` computes exactly PyTorch's
`Conv2d(Cin, features, kernel_size=4, stride=2, padding=1)` on NHWC inputs
([N, H, W, Cin] -> [N, H // 2, W // 2, features]) and holds the same parameters with the same
meaning as flax's nn.Conv(features, (4, 4), (2, 2), padding=((1, 1), (1, 1))):

  'kernel' [4, 4, Cin, features]:  y[i, j, o] = sum x[2i - 1 + kh, 2j - 1 + kw, c] * kernel[kh, kw, c, o]
  'bias'   [features]              (only with use_bias=True)

(PyTorch's weight [Cout, Cin, kh, kw] transposed to (kh, kw, Cin, Cout)), so the implementation is
a pure speed choice, interchangeable in a checkpoint.

Implementations: 'conv' (the reference, XLA's convolution, as nn.Conv runs it), 'gemm' (im2col +
one GEMM), 'toom2' / 'toom4' (Toom-Cook, see `upconv`) and 'fast' (DEFAULT_DOWNSAMPLER: per-shape
choice, tuned on XLA CPU). XLA CPU's own conv is correct and not pathological here (its input
gradient, a transposed conv, runs at ordinary-conv speed), but it runs at ~0.6-0.7x PyTorch on
the DCGAN layers. This layer is the exact adjoint (w.r.t. its input) of the transposed conv in
`upconv`, so the fast implementations reuse upconv's transforms in reverse order:
  y = kin^T( pout^T(x) @ U_d ),
one batched GEMM between two cheap transforms; its gradients use the same pieces.
Measured (experiments/bench_layers.py, batch 64, fwd + both gradients, one core vs PyTorch 2.13 on
one thread): 1.4-1.5x PyTorch on the 64/128/256-channel layers, 1.6x on the RGB layer.

Differentiation: as in `upconv`, reverse mode, jit and vmap work for every implementation;
forward mode (jax.jvp, jacfwd) only for 'conv' (and for 'fast' off CPU).
"""
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from gan.models import upconv
from gan.models.upconv import SCHEMES, check_nhwc, tiles_for
from gan.registry import Registry

DOWNSAMPLERS = Registry('downsampling implementation')
DEFAULT_DOWNSAMPLER = 'fast'


def conv_reference(x, kernel):
  """PyTorch Conv2d(k=4, s=2, p=1) semantics through XLA's convolution (what nn.Conv runs)."""
  return lax.conv_general_dilated(x, kernel, (2, 2), ((1, 1), (1, 1)),
                                  dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


def _kern_d(name, _, w):
  """Kernel transform for the conv: [4, 4, Ci, Co] -> U_d [P*P, Q*Q*Ci, Co]."""
  s = SCHEMES[name]
  p, q = s.points, s.sub
  ci, co = w.shape[2:]
  u = upconv._combine(lambda i: w[i[0]], s.ker_terms, (p, q), (0, 2))  # [P, 4, Q, Ci, Co]
  u = upconv._combine(lambda i: u[:, i[0]], s.ker_terms, (p, q), (1, 3))  # [P, P, Q, Q, Ci, Co]
  return u.reshape(p * p, q * q * ci, co)


def _kern_d_t(name, _, u):
  """Transpose of _kern_d: [P*P, Q*Q*Ci, Co] -> [4, 4, Ci, Co]."""
  s = SCHEMES[name]
  p, q = s.points, s.sub
  ci, co = u.shape[1] // (q * q), u.shape[2]
  terms = upconv._transpose_terms(s.ker_terms)
  u = u.reshape(p, p, q, q, ci, co)
  w = upconv._combine(lambda i: u[:, i[0], :, i[1]], terms, (4,), (1,))  # [P, 4, Q, Ci, Co]
  return upconv._combine(lambda i: w[i[0], :, i[1]], terms, (4,), (0,))  # [4, 4, Ci, Co]


kern_d, kern_d_t = upconv._linear_pair(_kern_d, _kern_d_t)


def fast_conv(x, kernel, scheme: str, chunks: int = 1):
  """Conv k=4 s=2 p=1 (PyTorch semantics, kernel [4, 4, Cin, Cout]) with an upconv scheme."""
  s = SCHEMES[scheme]
  n, h, w, _ = x.shape
  # Output row i reads input rows 2i-1 .. 2i+2; tiles must cover input row 2*(H//2) when H is odd.
  th, tw = tiles_for(-(-h // 2), s.tile), tiles_for(-(-w // 2), s.tile)
  hp, wp = 2 * s.tile * th, 2 * s.tile * tw
  if (hp, wp) != (h, w):
    x = jnp.pad(x, ((0, 0), (0, hp - h), (0, wp - w), (0, 0)))
  u = kern_d(scheme, None, kernel)

  def run(x):
    g = (x.shape[0], th, tw)
    return upconv.kin_t(scheme, g, upconv.batched_matmul(upconv.pout_t(scheme, g, x), u))

  return upconv.in_chunks(run, x, chunks)[:, :h // 2, :w // 2]


def choose_scheme(height: int, width: int, in_features: int, features: int) -> str:
  """The fastest scheme for a layer shape (input size), from experiments/bench_layers.py.

  Few input channels (the RGB layer): im2col + one GEMM. Otherwise Toom-Cook (see upconv).
  """
  if in_features <= 16:
    return 'gemm'
  if min(height, width) >= 16:
    return 'toom4'
  return 'toom2'


class _Downsample(upconv._Upsample):  # pylint: disable=protected-access
  """Same parameters and checks as the up-sampling layers, plus a minimum input size."""

  def _check_input(self, x):
    if x.shape[1] < 2 or x.shape[2] < 2:
      raise ValueError(f'{type(self).__name__} needs height and width >= 2 (output is H // 2, '
                       f'W // 2), got input shape {x.shape}.')


@DOWNSAMPLERS.register('conv')
class ConvDownsample(_Downsample):
  """Reference: XLA's convolution, as nn.Conv(features, (4, 4), (2, 2), padding=((1, 1), (1, 1)))."""

  def _apply(self, x, kernel):
    return conv_reference(x, kernel)


@DOWNSAMPLERS.register('gemm')
class GemmDownsample(_Downsample):
  """im2col to all 16 taps, then one GEMM."""

  def _apply(self, x, kernel):
    return fast_conv(x, kernel, 'gemm')


@DOWNSAMPLERS.register('toom2')
class Toom2Downsample(_Downsample):
  """Karatsuba (transposed): 0.56x the GEMM FLOPs."""

  def _apply(self, x, kernel):
    return fast_conv(x, kernel, 'toom2')


@DOWNSAMPLERS.register('toom4')
class Toom4Downsample(_Downsample):
  """Toom-3 (transposed): 0.39x the GEMM FLOPs."""

  def _apply(self, x, kernel):
    return fast_conv(x, kernel, 'toom4')


@DOWNSAMPLERS.register('fast')
class FastDownsample(_Downsample):
  """On CPU in float32, the fastest scheme and batch chunking for the layer shape
  (`choose_scheme`, `upconv.choose_chunks`); otherwise the reference."""

  def _apply(self, x, kernel):
    if jax.default_backend() != 'cpu' or x.dtype != jnp.float32:
      return conv_reference(x, kernel)
    n, h, w, c = x.shape
    scheme = choose_scheme(h, w, c, self.features)
    # The conv is the transposed conv of its output size run backwards; see choose_chunks.
    chunks = upconv.choose_chunks(scheme, n, -(-h // 2), -(-w // 2))
    return fast_conv(x, kernel, scheme, chunks)
