"""4x4 stride-2 transposed convolutions (the DCGAN upsampling layer), fast on XLA CPU.

Every implementation in `UPSAMPLERS` computes exactly PyTorch's
`ConvTranspose2d(Cin, features, kernel_size=4, stride=2, padding=1)` on NHWC inputs
([N, H, W, Cin] -> [N, 2H, 2W, features]) and holds the same parameters with the same meaning:

  'kernel' [4, 4, Cin, features]:  y[2i - 1 + kh, 2j - 1 + kw, o] += x[i, j, c] * kernel[kh, kw, c, o]
  'bias'   [features]              (only with use_bias=True)

i.e. PyTorch's weight [Cin, Cout, kh, kw] transposed to (kh, kw, Cin, Cout), not flipped. The
implementation is a pure speed choice, interchangeable in a checkpoint.

Why not just lax.conv_transpose: XLA CPU differentiates it ~17x slower than PyTorch, almost all
of it in the kernel gradient (~2.3 s for the 8->16 DCGAN layer at batch 64). Implementations:

  'conv_transpose'  the reference, lax.conv_transpose.
  'xla_vjp'         the same forward; backward as XLA's fast ordinary convolutions.
  'gemm'            one GEMM x @ W[Cin, 16 Cout], then overlap-add (col2im).
  'toom2', 'toom4'  Toom-Cook (below).
  'fast'            (DEFAULT_UPSAMPLER) per-shape choice of the above, tuned on XLA CPU.

Toom-Cook: split the layer by output phase (even/odd row, even/odd column); per spatial axis,
evaluate a tile of T input positions at T+1 points, multiply each point by all four phases of the
kernel at once (one GEMM over channels per point), interpolate the products back and overlap-add
them into the tile's 2T outputs. A 2-D layer then costs (T+1)^2 / (4 T^2) of the direct FLOPs
(0.56x for T=2, Karatsuba, exact +-1 transforms; 0.39x for T=4, points 0, +-1, 2, infinity,
~1e-6 relative error), as one batched GEMM of (T+1)^2 matrices, which XLA CPU runs near its matmul
roofline, plus cheap element-wise transforms. The backward pass uses the same pieces transposed:
custom VJPs give every linear transform its exact transpose, so no slow autodiff-generated
pad/scatter code remains.

On CPU the transforms kin, kin_t, pout, pout_t run as one native pass each where that is faster
(`gan/models/tiled.py`: a C++ XLA FFI kernel, built on first use; the XLA code here is the
fallback and the reference the kernel is tested against).

`DEFAULT_UPSAMPLER` ('fast') picks the scheme per layer shape (`choose_scheme`) and runs big
layers a slice of the batch at a time so the transforms' intermediates stay in cache
(`choose_chunks`). It falls back to the reference on GPU/TPU, where XLA's convolutions are fast,
and for non-float32 inputs (the Toom transforms are tuned for float32 accuracy).
Measured (experiments/bench_layers.py, batch 64, fwd + both gradients, one core vs PyTorch 2.13 on
one thread): 1.4-1.5x PyTorch on the 512/256/128-channel layers, 1.7x on the RGB layer.

Differentiation: reverse mode (grad, vjp, grad-of-grad as in R1 penalties), jit and vmap work for
every implementation. Forward mode (jax.jvp, jacfwd, hessian) works only for 'conv_transpose'
(and for 'fast' off CPU), because the others use jax.custom_vjp.
"""
import dataclasses
import functools
from typing import Callable, Dict, List, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gan.models import tiled
from gan.registry import Registry

UPSAMPLERS = Registry('upsampling implementation')
DEFAULT_UPSAMPLER = 'fast'

_DN = ('NHWC', 'HWIO', 'NHWC')


# --------------------------------------------------------------------------------------------
# Reference: the transposed convolution through XLA's own conv_transpose.

def conv_transpose_reference(x, kernel):
  """PyTorch ConvTranspose2d(k=4, s=2, p=1) semantics through lax.conv_transpose.

  lax.conv_transpose (transpose_kernel=False) correlates the stride-dilated input with the kernel,
  which scatters with the kernel flipped; flipping it back gives the PyTorch (scatter) meaning.
  Padding k - 1 - p = 2 on each side gives output size 2H.
  """
  return lax.conv_transpose(x, kernel[::-1, ::-1], (2, 2), ((2, 2), (2, 2)), dimension_numbers=_DN)


def _strided_conv(x, kernel):
  """Conv2d(k=4, s=2, p=1): the adjoint of the transposed conv w.r.t. its input."""
  return lax.conv_general_dilated(x, kernel, (2, 2), ((1, 1), (1, 1)), dimension_numbers=_DN)


@jax.custom_vjp
def conv_transpose_xla_vjp(x, kernel):
  """The reference forward with a backward written as XLA's fast ordinary convolutions.

  XLA CPU's slow part is the autodiff weight gradient of conv_transpose (~2.3 s for the 8->16
  DCGAN layer); its input gradient is already a strided conv. Here dkernel is instead the weight
  gradient of that strided conv, dK[k, o, c] = sum_i dy[2i - 1 + k, o] x[i, c], which XLA runs
  at ordinary-conv speed.
  """
  return conv_transpose_reference(x, kernel)


def _xla_vjp_fwd(x, kernel):
  return conv_transpose_reference(x, kernel), (x, kernel)


def _xla_vjp_bwd(res, dy):
  x, kernel = res
  kernel_t = jnp.swapaxes(kernel, 2, 3)  # [4, 4, Cout, Cin]
  dx = _strided_conv(dy, kernel_t)
  _, weight_vjp = jax.vjp(lambda k: _strided_conv(dy, k), kernel_t)
  return dx, jnp.swapaxes(weight_vjp(x)[0], 2, 3)


conv_transpose_xla_vjp.defvjp(_xla_vjp_fwd, _xla_vjp_bwd)


# --------------------------------------------------------------------------------------------
# Schemes: 1-D algorithms for "transposed conv k=4 s=2 p=1", applied separably on H and W.

# out_index -> [(coef, in_index, dt)]: out[o](t) = sum coef * in[i](t + dt), t the tile index.
Terms = Dict[Tuple[int, ...], List[Tuple[float, Tuple[int, ...], int]]]


def _build_terms(entries) -> Terms:
  terms: Terms = {}
  for o, c, i, dt in entries:
    if c != 0:
      terms.setdefault(o, []).append((float(c), i, dt))
  return terms


def _transpose_terms(terms: Terms) -> Terms:
  return _build_terms((i, c, o, -dt) for o, lst in terms.items() for c, i, dt in lst)


@dataclasses.dataclass(frozen=True, eq=False)
class Scheme:
  """One spatial axis: a tile of `tile` inputs -> `points` values (inp); each point is multiplied
  by `sub` transformed kernel vectors (ker: one GEMM per point); the products become the tile's
  2*tile outputs (out), which may read the neighbouring tiles' products (dt = -1 / +1).

  inp: [points, tile]; ker: [points, sub, 4 taps]; out: [2*tile slots, 3 (dt = -1, 0, +1), points, sub].
  """
  name: str
  inp: np.ndarray
  ker: np.ndarray
  out: np.ndarray

  @property
  def tile(self) -> int:
    return self.inp.shape[1]

  @property
  def points(self) -> int:
    return self.inp.shape[0]

  @property
  def sub(self) -> int:
    return self.ker.shape[1]

  @functools.cached_property
  def inp_terms(self) -> Terms:
    return _build_terms(((p,), self.inp[p, j], (j,), 0)
                        for p in range(self.points) for j in range(self.tile))

  @functools.cached_property
  def ker_terms(self) -> Terms:
    return _build_terms(((p, q), self.ker[p, q, k], (k,), 0)
                        for p in range(self.points) for q in range(self.sub) for k in range(4))

  @functools.cached_property
  def out_terms(self) -> Terms:
    return _build_terms(((r,), self.out[r, d, p, q], (p, q), d - 1) for r in range(2 * self.tile)
                        for d in range(3) for p in range(self.points) for q in range(self.sub))

  @functools.cached_property
  def inp_terms_t(self) -> Terms:
    return _transpose_terms(self.inp_terms)

  @functools.cached_property
  def out_terms_t(self) -> Terms:
    return _transpose_terms(self.out_terms)

  def flops_ratio(self) -> float:
    """GEMM FLOPs of a 2-D layer relative to the direct transposed convolution."""
    return (self.points * self.sub) ** 2 / (16 * self.tile ** 2)


def _toom_scheme(name: str, finite_points: Sequence[float]) -> Scheme:
  """Toom-Cook on tiles of T = len(finite_points) inputs, evaluated at finite_points and infinity.

  Per output phase the layer is a 2-tap convolution: even outputs y[2n] = x[n] w1 + x[n-1] w3,
  odd outputs y[2n+1] = x[n+1] w0 + x[n] w2, i.e. the polynomial products X(z) (w1 + w3 z) and
  X(z) (w0 + w2 z) of the tile's input polynomial X. Both phases share the evaluations of X, so
  one GEMM per point serves all four 2-D phases.
  """
  z = np.asarray(finite_points, np.float64)
  t = len(z)
  vander = np.zeros((t + 1, t + 1))  # the degree-t product polynomial evaluated at the points
  vander[:t] = z[:, None] ** np.arange(t + 1)[None, :]
  vander[t, t] = 1.0  # "infinity" = the leading coefficient
  interp = np.linalg.inv(vander)  # point values -> product coefficients
  interp[np.abs(interp) < 1e-12] = 0.0
  inp = np.concatenate([vander[:t, :t], np.eye(t)[t - 1:]], 0)
  ker = np.zeros((t + 1, 2, 4))
  for p in range(t + 1):
    lo, hi = (1.0, z[p]) if p < t else (0.0, 1.0)  # filter value lo * g0 + hi * g1
    ker[p, 0, 1], ker[p, 0, 3] = lo, hi  # even phase: (g0, g1) = (w1, w3)
    ker[p, 1, 0], ker[p, 1, 2] = lo, hi  # odd phase:  (g0, g1) = (w0, w2)
  out = np.zeros((2 * t, 3, t + 1, 2))
  for j in range(t + 1):
    # Even coefficient j lands on y[2(tile_start + j)]: slot 2j, or slot 0 of the next tile.
    r, d = (2 * j, 1) if j < t else (0, 0)
    out[r, d, :, 0] += interp[j]
    # Odd coefficient j lands on y[2(tile_start + j) - 1]: slot 2j-1, or the previous tile's last.
    r, d = (2 * j - 1, 1) if j > 0 else (2 * t - 1, 2)
    out[r, d, :, 1] += interp[j]
  return Scheme(name, inp, ker, out)


def _gemm_scheme() -> Scheme:
  """Direct: one GEMM x @ W[Cin, 16 Cout] per input position, then overlap-add (col2im)."""
  out = np.zeros((2, 3, 1, 4))
  out[0, 1, 0, 1] = out[0, 0, 0, 3] = 1.0  # y[2i]   = x[i] w1 + x[i-1] w3
  out[1, 1, 0, 2] = out[1, 2, 0, 0] = 1.0  # y[2i+1] = x[i] w2 + x[i+1] w0
  return Scheme('gemm', np.ones((1, 1)), np.eye(4)[None], out)


SCHEMES = {
    'gemm': _gemm_scheme(),
    'toom2': _toom_scheme('toom2', (0.0, 1.0)),  # Karatsuba: exact +-1 transforms
    'toom4': _toom_scheme('toom4', (0.0, 1.0, -1.0, 2.0)),  # Toom-3 points
}


# --------------------------------------------------------------------------------------------
# Separable 2-D transforms. Each stage handles one spatial axis and is written as stacks of
# sparse sums of (shifted) slices, which XLA CPU fuses into one loop per stage.

def _shift(a, axis: int, dt: int):
  """b[t] = a[t + dt] along `axis`, zero outside."""
  if dt == 0:
    return a
  n = a.shape[axis]
  pad = [(0, 0)] * a.ndim
  pad[axis] = (0, dt) if dt > 0 else (-dt, 0)
  start = max(dt, 0)
  return lax.slice_in_dim(jnp.pad(a, pad), start, start + n, axis=axis)


def _combine(take: Callable, terms: Terms, out_shape: Tuple[int, ...], out_axes: Tuple[int, ...],
             tile_axis: int = 0):
  """out[o] = sum_{(c, i, dt) in terms[o]} c * shift(take(i), dt) over tile_axis of the slices.

  The out index dims are inserted at `out_axes` (ascending positions in the result).
  """
  cache = {}

  def piece(i, dt):
    if (i, dt) not in cache:
      cache[i, dt] = _shift(take(i), tile_axis, dt)
    return cache[i, dt]

  def entry(o):
    acc = None
    for c, i, dt in terms.get(o, ()):
      s = piece(i, dt)
      s = s if c == 1.0 else (-s if c == -1.0 else s * jnp.asarray(c, s.dtype))
      acc = s if acc is None else acc + s
    if acc is None:  # an output no input reaches
      c, i, dt = next(iter(terms.values()))[0]
      acc = jnp.zeros_like(piece(i, dt))
    return acc

  def build(prefix, k):
    if k == len(out_shape):
      return entry(prefix)
    return jnp.stack([build(prefix + (o,), k + 1) for o in range(out_shape[k])], out_axes[k] - k)

  return build((), 0)


# Geometry g = (N, Th, Tw): batch and number of tiles per spatial axis.

def _kin(name, g, x):
  """Input transform: x [N, T Th, T Tw, C] -> V [P*P, N*Th*Tw, C]."""
  s = SCHEMES[name]
  n, th, tw = g
  t, p, c = s.tile, s.points, x.shape[-1]
  x = x.reshape(n, th, t, tw, t, c)
  v = _combine(lambda i: x[:, :, i[0]], s.inp_terms, (p,), (0,))  # [P, N, Th, Tw, T, C]
  v = _combine(lambda i: v[..., i[0], :], s.inp_terms, (p,), (1,))  # [P, P, N, Th, Tw, C]
  return v.reshape(p * p, n * th * tw, c)


def _kin_t(name, g, v):
  """Transpose of _kin: [P*P, N*Th*Tw, C] -> [N, T Th, T Tw, C]."""
  s = SCHEMES[name]
  n, th, tw = g
  t, p, c = s.tile, s.points, v.shape[-1]
  terms = s.inp_terms_t
  v = v.reshape(p, p, n, th, tw, c)
  x = _combine(lambda i: v[:, i[0]], terms, (t,), (4,))  # [P, N, Th, Tw, T, C]
  x = _combine(lambda i: x[i[0]], terms, (t,), (2,))  # [N, Th, T, Tw, T, C]
  return x.reshape(n, th * t, tw * t, c)


def _pout(name, g, m):
  """Output transform: products [P*P, N*Th*Tw, Q*Q*Co] -> y [N, 2T Th, 2T Tw, Co]."""
  s = SCHEMES[name]
  n, th, tw = g
  t, p, q = s.tile, s.points, s.sub
  co = m.shape[-1] // (q * q)
  m = m.reshape(p, p, n, th, tw, q, q, co)
  z = _combine(lambda i: m[i[0], :, :, :, :, i[1]], s.out_terms, (2 * t,), (3,), tile_axis=2)
  # z: [P, N, Th, 2T, Tw, Q, Co]
  y = _combine(lambda i: z[i[0], :, :, :, :, i[1]], s.out_terms, (2 * t,), (4,), tile_axis=3)
  return y.reshape(n, th * 2 * t, tw * 2 * t, co)  # y: [N, Th, 2T, Tw, 2T, Co]


def _pout_t(name, g, d):
  """Transpose of _pout: [N, 2T Th, 2T Tw, Co] -> [P*P, N*Th*Tw, Q*Q*Co]."""
  s = SCHEMES[name]
  n, th, tw = g
  t, p, q = s.tile, s.points, s.sub
  co = d.shape[-1]
  terms = s.out_terms_t
  d = d.reshape(n, th, 2 * t, tw, 2 * t, co)
  z = _combine(lambda i: d[:, :, i[0]], terms, (p, q), (0, 5), tile_axis=1)  # [P, N, Th, Tw, 2T, Q, Co]
  m = _combine(lambda i: z[:, :, :, :, i[0]], terms, (p, q), (1, 6), tile_axis=3)
  return m.reshape(p * p, n * th * tw, q * q * co)  # m: [P, P, N, Th, Tw, Q, Q, Co]


def _kern(name, _, w):
  """Kernel transform: [4, 4, Ci, Co] -> U [P*P, Ci, Q*Q*Co]."""
  s = SCHEMES[name]
  p, q = s.points, s.sub
  ci, co = w.shape[2:]
  u = _combine(lambda i: w[i[0]], s.ker_terms, (p, q), (0, 3))  # [P, 4, Ci, Q, Co]
  u = _combine(lambda i: u[:, i[0]], s.ker_terms, (p, q), (1, 4))  # [P, P, Ci, Q, Q, Co]
  return u.reshape(p * p, ci, q * q * co)


def _kern_t(name, _, u):
  """Transpose of _kern: [P*P, Ci, Q*Q*Co] -> [4, 4, Ci, Co]."""
  s = SCHEMES[name]
  p, q = s.points, s.sub
  ci, co = u.shape[1], u.shape[2] // (q * q)
  terms = _transpose_terms(s.ker_terms)
  u = u.reshape(p, p, ci, q, q, co)
  w = _combine(lambda i: u[:, i[0], :, :, i[1]], terms, (4,), (1,))  # [P, 4, Ci, Q, Co]
  w = _combine(lambda i: w[i[0], :, :, i[1]], terms, (4,), (0,))  # [4, 4, Ci, Co]
  return w


def _linear_pair(f, f_t):
  """Linear maps f and f_t = f^T as custom-VJP ops whose VJPs are each other.

  Autodiff would transpose the slice/pad/stack transforms into scatter-like pad chains that XLA
  CPU runs slowly; the explicit transposes are the same fast stacked transforms. The VJPs call the
  ops themselves, so grad-of-grad stays on the fast path.
  """
  @functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
  def op(name, g, x):
    return f(name, g, x)

  @functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
  def op_t(name, g, x):
    return f_t(name, g, x)

  op.defvjp(lambda name, g, x: (op(name, g, x), None), lambda name, g, _, ct: (op_t(name, g, ct),))
  op_t.defvjp(lambda name, g, x: (op_t(name, g, x), None), lambda name, g, _, ct: (op(name, g, ct),))
  return op, op_t


def _native_or_xla(op: str, xla_fn):
  """Transform `op` through the native one-pass kernel where it applies (`tiled.supports`),
  else through the XLA code above; both compute the same function."""
  def fn(name, g, x):
    s = SCHEMES[name]
    return getattr(tiled, op)(s, g, x) if tiled.supports(op, s, x) else xla_fn(name, g, x)
  return fn


kin, kin_t = _linear_pair(_native_or_xla('kin', _kin), _native_or_xla('kin_t', _kin_t))
pout, pout_t = _linear_pair(_native_or_xla('pout', _pout), _native_or_xla('pout_t', _pout_t))
kern, kern_t = _linear_pair(_kern, _kern_t)


def batched_matmul(a, b):
  """[B, M, K] x [B, K, N] -> [B, M, N] (float32 accumulate, full precision)."""
  return lax.dot_general(a, b, (((2,), (1,)), ((0,), (0,))), precision=lax.Precision.HIGHEST)


def tiles_for(size: int, tile: int) -> int:
  return -(-size // tile)


def in_chunks(fn, x, chunks: int):
  """fn over `chunks` equal slices of the batch, concatenated.

  For maps too big for the cache, the transforms' intermediates of one slice stay in cache. The
  slices are unrolled, not a lax.map: a loop would stack its per-slice outputs and saved
  residuals into zero-initialised buffers, which cost the DCGAN step ~5% (measured). Falls back to
  one slice when the batch does not divide.
  """
  n = x.shape[0]
  if chunks <= 1 or n % chunks:
    return fn(x)
  size = n // chunks
  return jnp.concatenate([fn(x[i * size:(i + 1) * size]) for i in range(chunks)], axis=0)


def fast_conv_transpose(x, kernel, scheme: str, chunks: int = 1):
  """Transposed conv k=4 s=2 p=1 (PyTorch semantics, kernel [4, 4, Cin, Cout]) with a scheme."""
  s = SCHEMES[scheme]
  n, h, w, _ = x.shape
  th, tw = tiles_for(h, s.tile), tiles_for(w, s.tile)
  if (th * s.tile, tw * s.tile) != (h, w):
    x = jnp.pad(x, ((0, 0), (0, th * s.tile - h), (0, tw * s.tile - w), (0, 0)))
  u = kern(scheme, None, kernel)

  def run(x):
    g = (x.shape[0], th, tw)
    return pout(scheme, g, batched_matmul(kin(scheme, g, x), u))

  return in_chunks(run, x, chunks)[:, :2 * h, :2 * w]


def choose_scheme(height: int, width: int, in_features: int, features: int) -> str:
  """The fastest scheme for a layer shape, from experiments/bench_layers.py on XLA CPU.

  Few output channels (the RGB layer): the direct GEMM + overlap-add moves the least data.
  Otherwise Toom-Cook: T=4 cuts the GEMM FLOPs most, T=2 keeps the GEMMs taller on 4x4 maps.
  """
  if features <= 16:
    return 'gemm'
  if min(height, width) >= 8:
    return 'toom4'
  return 'toom2'


def choose_chunks(scheme: str, batch: int, height: int, width: int, min_rows: int = 2048) -> int:
  """How many batch slices to run a Toom-Cook layer in (see `in_chunks`).

  Halves the batch while every slice keeps >= min_rows GEMM rows (tiles) and the batch divides.
  Measured in the whole DCGAN 64x64 step (experiments/benchmark.py, 2 cores): every layer there
  (at most 1024 rows) is fastest unsliced (92 images/s unsliced against 89 with the 16->32 and
  32->16 layers in 2 and 4 slices), although slicing won in single-layer timings on one core; so
  only maps with >= 4096 rows (e.g. 128x128 outputs at batch 64) are sliced. The GEMM scheme (tiny
  channel counts) is never sliced.
  """
  if scheme == 'gemm':
    return 1
  s = SCHEMES[scheme]
  rows = batch * tiles_for(height, s.tile) * tiles_for(width, s.tile)
  chunks = 1
  while rows // (2 * chunks) >= min_rows and batch % (2 * chunks) == 0:
    chunks *= 2
  return chunks


# --------------------------------------------------------------------------------------------
# Modules.

def check_nhwc(x, layer: str):
  if x.ndim != 4:
    raise ValueError(f'{layer} expects NHWC input [batch, height, width, channels], got shape '
                     f'{x.shape}. Reshape or add the batch axis first.')
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise ValueError(f'{layer} expects a floating-point input, got {x.dtype}. Cast with '
                     'x.astype(jnp.float32).')


class _Upsample(nn.Module):
  """Shared parameters and checks of the 4x4 stride-2 layers (also the base of downconv's);
  subclasses define `_apply(x, kernel)` and may add input checks in `_check_input(x)`."""
  features: int
  use_bias: bool = False
  kernel_init: Callable = nn.initializers.normal(0.02)
  bias_init: Callable = nn.initializers.zeros

  @nn.compact
  def __call__(self, x):
    check_nhwc(x, type(self).__name__)
    if self.features < 1:
      raise ValueError(f'features must be >= 1, got {self.features}.')
    self._check_input(x)
    kernel = self.param('kernel', self.kernel_init, (4, 4, x.shape[-1], self.features), jnp.float32)
    y = self._apply(x, kernel.astype(x.dtype))
    if self.use_bias:
      y = y + self.param('bias', self.bias_init, (self.features,), jnp.float32).astype(y.dtype)
    return y

  def _check_input(self, x):
    del x

  def _apply(self, x, kernel):
    raise NotImplementedError


@UPSAMPLERS.register('conv_transpose')
class ConvTransposeUpsample(_Upsample):
  """Reference: XLA's conv_transpose (slow gradient on CPU)."""

  def _apply(self, x, kernel):
    return conv_transpose_reference(x, kernel)


@UPSAMPLERS.register('xla_vjp')
class XlaVjpUpsample(_Upsample):
  """XLA's conv_transpose forward; backward as ordinary convolutions (`conv_transpose_xla_vjp`)."""

  def _apply(self, x, kernel):
    return conv_transpose_xla_vjp(x, kernel)


@UPSAMPLERS.register('gemm')
class GemmUpsample(_Upsample):
  """One GEMM to all 16 kernel taps, then overlap-add."""

  def _apply(self, x, kernel):
    return fast_conv_transpose(x, kernel, 'gemm')


@UPSAMPLERS.register('toom2')
class Toom2Upsample(_Upsample):
  """Karatsuba tiles of 2x2 inputs: 0.56x the GEMM FLOPs."""

  def _apply(self, x, kernel):
    return fast_conv_transpose(x, kernel, 'toom2')


@UPSAMPLERS.register('toom4')
class Toom4Upsample(_Upsample):
  """Toom-3 tiles of 4x4 inputs: 0.39x the GEMM FLOPs."""

  def _apply(self, x, kernel):
    return fast_conv_transpose(x, kernel, 'toom4')


@UPSAMPLERS.register('fast')
class FastUpsample(_Upsample):
  """On CPU in float32, the fastest scheme and batch chunking for the layer shape
  (`choose_scheme`, `choose_chunks`); otherwise the reference."""

  def _apply(self, x, kernel):
    if jax.default_backend() != 'cpu' or x.dtype != jnp.float32:
      return conv_transpose_reference(x, kernel)
    n, h, w, c = x.shape
    scheme = choose_scheme(h, w, c, self.features)
    return fast_conv_transpose(x, kernel, scheme, choose_chunks(scheme, n, h, w))
