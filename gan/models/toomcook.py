"""The Toom-Cook / GEMM engine for 4x4 stride-2 convolutions and their transposes.

`upconv` (the transposed conv, PyTorch's ConvTranspose2d(k=4, s=2, p=1)) and `downconv` (the conv,
Conv2d(k=4, s=2, p=1), its adjoint w.r.t. the input) are layers above this module: each picks a
scheme, chains the transforms below around one batched GEMM, and registers its layer classes.

Toom-Cook: split the transposed conv by output phase (even/odd row, even/odd column); per spatial
axis, evaluate a tile of T input positions at T+1 points, multiply each point by all four phases of
the kernel at once (one GEMM over channels per point), interpolate the products back and
overlap-add them into the tile's 2T outputs. A 2-D layer then costs (T+1)^2 / (4 T^2) of the
direct FLOPs (0.56x for T=2, Karatsuba, exact +-1 transforms; 0.39x for T=4, points 0, +-1, 2,
infinity, ~1e-6 relative error), as one batched GEMM of (T+1)^2 matrices, which XLA CPU runs near
its matmul roofline, plus cheap element-wise transforms. 'gemm' is the same frame with T=1 and no
savings: one GEMM to all 16 kernel taps and an overlap-add (col2im).

  transposed conv:  y = pout( kin(x) @ U ),        U = kern(scheme, 'up', w)
  conv (adjoint):   y = kin_t( pout_t(x) @ U_d ),  U_d = kern(scheme, 'down', w)

The backward passes use the same pieces transposed: custom VJPs give every linear transform its
exact transpose (`linear_pair`), so no slow autodiff-generated pad/scatter code remains, and
grad-of-grad (R1 penalties) stays on the fast path. Forward mode (jax.jvp, jacfwd) does not work
through these custom VJPs.

On the fast path (`fast_path`: CPU, float32) the transforms kin, kin_t, pout, pout_t run as one
native pass each where that is faster (`use_native`; `gan/models/tiled.py`: a C++ XLA FFI kernel,
built on first use). The XLA code here (`kin_xla` ...) is the fallback and the reference the
kernel is tested against. Big layers run a slice of the batch at a time so the transforms'
intermediates stay in cache (`choose_chunks`, `in_chunks`).
"""
import dataclasses
import functools
from typing import Callable, Dict, List, Mapping, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gan.models import native, tiled
from gan.registry import Registry


def fast_path(x) -> bool:
  """Whether the layers run their Toom-Cook / GEMM implementations on x: on CPU in float32.

  Elsewhere XLA's own convolutions are fast (GPU/TPU), and the Toom transforms are tuned for
  float32 accuracy, so the layers fall back to their reference implementation.
  """
  return jax.default_backend() == 'cpu' and x.dtype == jnp.float32


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
  def ker_terms_t(self) -> Terms:
    return _transpose_terms(self.ker_terms)

  @functools.cached_property
  def out_terms_t(self) -> Terms:
    return _transpose_terms(self.out_terms)

  def flops_ratio(self) -> float:
    """GEMM FLOPs of a 2-D layer relative to the direct transposed convolution."""
    return (self.points * self.sub) ** 2 / (16 * self.tile ** 2)


def toom_scheme(name: str, finite_points: Sequence[float]) -> Scheme:
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


def gemm_scheme() -> Scheme:
  """Direct: one GEMM x @ W[Cin, 16 Cout] per input position, then overlap-add (col2im)."""
  out = np.zeros((2, 3, 1, 4))
  out[0, 1, 0, 1] = out[0, 0, 0, 3] = 1.0  # y[2i]   = x[i] w1 + x[i-1] w3
  out[1, 1, 0, 2] = out[1, 2, 0, 0] = 1.0  # y[2i+1] = x[i] w2 + x[i+1] w0
  return Scheme('gemm', np.ones((1, 1)), np.eye(4)[None], out)


SCHEMES = {
    'gemm': gemm_scheme(),
    'toom2': toom_scheme('toom2', (0.0, 1.0)),  # Karatsuba: exact +-1 transforms
    'toom4': toom_scheme('toom4', (0.0, 1.0, -1.0, 2.0)),  # Toom-3 points
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


def _at(where: Dict[int, int]):
  """The index tuple taking position where[k] on axis k and everything on the other axes."""
  return tuple(where.get(k, slice(None)) for k in range(max(where) + 1))


# Geometry g = (N, Th, Tw): batch and number of tiles per spatial axis. The pure-XLA transforms
# below are the fallback of the native ones and their reference in tests.

def kin_xla(name, g, x):
  """Input transform: x [N, T Th, T Tw, C] -> V [P*P, N*Th*Tw, C]."""
  s = SCHEMES[name]
  n, th, tw = g
  t, p, c = s.tile, s.points, x.shape[-1]
  x = x.reshape(n, th, t, tw, t, c)
  v = _combine(lambda i: x[:, :, i[0]], s.inp_terms, (p,), (0,))  # [P, N, Th, Tw, T, C]
  v = _combine(lambda i: v[..., i[0], :], s.inp_terms, (p,), (1,))  # [P, P, N, Th, Tw, C]
  return v.reshape(p * p, n * th * tw, c)


def kin_t_xla(name, g, v):
  """Transpose of kin: [P*P, N*Th*Tw, C] -> [N, T Th, T Tw, C]."""
  s = SCHEMES[name]
  n, th, tw = g
  t, p, c = s.tile, s.points, v.shape[-1]
  terms = s.inp_terms_t
  v = v.reshape(p, p, n, th, tw, c)
  x = _combine(lambda i: v[:, i[0]], terms, (t,), (4,))  # [P, N, Th, Tw, T, C]
  x = _combine(lambda i: x[i[0]], terms, (t,), (2,))  # [N, Th, T, Tw, T, C]
  return x.reshape(n, th * t, tw * t, c)


def pout_xla(name, g, m):
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


def pout_t_xla(name, g, d):
  """Transpose of pout: [N, 2T Th, 2T Tw, Co] -> [P*P, N*Th*Tw, Q*Q*Co]."""
  s = SCHEMES[name]
  n, th, tw = g
  t, p, q = s.tile, s.points, s.sub
  co = d.shape[-1]
  terms = s.out_terms_t
  d = d.reshape(n, th, 2 * t, tw, 2 * t, co)
  z = _combine(lambda i: d[:, :, i[0]], terms, (p, q), (0, 5), tile_axis=1)  # [P, N, Th, Tw, 2T, Q, Co]
  m = _combine(lambda i: z[:, :, :, :, i[0]], terms, (p, q), (1, 6), tile_axis=3)
  return m.reshape(p * p, n * th * tw, q * q * co)  # m: [P, P, N, Th, Tw, Q, Q, Co]


def _kern(name, layout, w):
  """Kernel transform [4, 4, Ci, Co] -> U [P*P, Ci, Q*Q*Co] (layout 'up': the transposed conv's
  GEMM operand) or U_d [P*P, Q*Q*Ci, Co] ('down': the conv's, sub-phases before Ci)."""
  s = SCHEMES[name]
  p, q = s.points, s.sub
  ci, co = w.shape[2:]
  a = 3 if layout == 'up' else 2  # where the first sub-phase axis goes
  u = _combine(lambda i: w[i[0]], s.ker_terms, (p, q), (0, a))  # up [P, 4, Ci, Q, Co]
  u = _combine(lambda i: u[:, i[0]], s.ker_terms, (p, q), (1, a + 1))  # up [P, P, Ci, Q, Q, Co]
  return u.reshape(p * p, ci, q * q * co) if layout == 'up' else u.reshape(p * p, q * q * ci, co)


def _kern_t(name, layout, u):
  """Transpose of _kern: U or U_d -> [4, 4, Ci, Co]."""
  s = SCHEMES[name]
  p, q = s.points, s.sub
  if layout == 'up':
    a, ci, co = 3, u.shape[1], u.shape[2] // (q * q)
    u = u.reshape(p, p, ci, q, q, co)
  else:
    a, ci, co = 2, u.shape[1] // (q * q), u.shape[2]
    u = u.reshape(p, p, q, q, ci, co)
  terms = s.ker_terms_t
  w = _combine(lambda i: u[_at({1: i[0], a + 1: i[1]})], terms, (4,), (1,))  # [P, 4, ...]
  return _combine(lambda i: w[_at({0: i[0], a: i[1]})], terms, (4,), (0,))  # [4, 4, Ci, Co]


# --------------------------------------------------------------------------------------------
# The transforms as differentiable ops: native or XLA, each with its exact transpose as VJP.

def linear_pair(f, f_t):
  """Linear maps f(name, g, x) and f_t = f^T as custom-VJP ops whose VJPs are each other.

  name (a key of SCHEMES) and g (the geometry, or the kernel layout) are static. Autodiff would
  transpose the slice/pad/stack transforms into scatter-like pad chains that XLA CPU runs slowly;
  the explicit transposes are the same fast stacked transforms. The VJPs call the ops themselves,
  so grad-of-grad stays on the fast path.
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


def use_native(op: str, s: Scheme, x) -> bool:
  """Whether transform `op` (kin, kin_t, pout, pout_t) of scheme `s` on x runs as the native pass:
  on the fast path, runs of at least tiled.MIN_CHANNELS floats, the kernel built. Not for 'gemm':
  its transforms are a copy and an overlap-add that XLA fuses with their neighbours, and it
  serves the 3-channel RGB layers.
  """
  channels = x.shape[-1] // (s.sub ** 2 if op == 'pout' else 1)
  return (s.name != 'gemm' and fast_path(x) and channels >= tiled.MIN_CHANNELS
          and native.available())


def _native_or_xla(op: str, xla_fn):
  """Transform `op` through the native kernel where `use_native` says so, else through XLA; both
  compute the same function."""
  def fn(name, g, x):
    s = SCHEMES[name]
    return getattr(tiled, op)(s, g, x) if use_native(op, s, x) else xla_fn(name, g, x)
  return fn


# kin(name, g, x), pout(name, g, m) and their transposes; kern(name, 'up' | 'down', w).
kin, kin_t = linear_pair(_native_or_xla('kin', kin_xla), _native_or_xla('kin_t', kin_t_xla))
pout, pout_t = linear_pair(_native_or_xla('pout', pout_xla), _native_or_xla('pout_t', pout_t_xla))
kern, kern_t = linear_pair(_kern, _kern_t)


def batched_matmul(a, b):
  """[B, M, K] x [B, K, N] -> [B, M, N] (float32 accumulate, full precision)."""
  return lax.dot_general(a, b, (((2,), (1,)), ((0,), (0,))), precision=lax.Precision.HIGHEST)


def tiles_for(size: int, tile: int) -> int:
  """How many tiles of `tile` positions cover `size` positions."""
  return -(-size // tile)


# --------------------------------------------------------------------------------------------
# Batch slicing.

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


def on_tiles(fn, x, tiles: Tuple[int, int], slots: int, chunks: int = 1):
  """fn(g, x) on x [N, H, W, C] zero-padded at the bottom and right to tiles x slots positions per
  axis, in `chunks` batch slices (`in_chunks`); g = (slice batch, *tiles) is the geometry."""
  _, h, w, _ = x.shape
  hp, wp = tiles[0] * slots, tiles[1] * slots
  if (hp, wp) != (h, w):
    x = jnp.pad(x, ((0, 0), (0, hp - h), (0, wp - w), (0, 0)))
  return in_chunks(lambda x: fn((x.shape[0], *tiles), x), x, chunks)


def choose_chunks(scheme: str, batch: int, height: int, width: int, min_rows: int = 2048) -> int:
  """How many batch slices to run a Toom-Cook layer in (see `in_chunks`); height and width are
  the transposed conv's input size (the conv's output size).

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
# The layers' shared module frame.

def check_nhwc(x, layer: str):
  """A clear error for an input that is not a floating-point NHWC batch."""
  if x.ndim != 4:
    raise ValueError(f'{layer} expects NHWC input [batch, height, width, channels], got shape '
                     f'{x.shape}. Reshape or add the batch axis first.')
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise ValueError(f'{layer} expects a floating-point input, got {x.dtype}. Cast with '
                     'x.astype(jnp.float32).')


class Stride2Layer(nn.Module):
  """Parameters and checks shared by every 4x4 stride-2 layer (up and down, every implementation):
  'kernel' [4, 4, Cin, features] float32 and, with use_bias, 'bias' [features] float32, both cast
  to the input's dtype. Subclasses define `compute(x, kernel)` and may add `check_input(x)`."""
  features: int
  use_bias: bool = False
  kernel_init: Callable = nn.initializers.normal(0.02)
  bias_init: Callable = nn.initializers.zeros

  @nn.compact
  def __call__(self, x):
    check_nhwc(x, type(self).__name__)
    if self.features < 1:
      raise ValueError(f'features must be >= 1, got {self.features}.')
    self.check_input(x)
    kernel = self.param('kernel', self.kernel_init, (4, 4, x.shape[-1], self.features), jnp.float32)
    y = self.compute(x, kernel.astype(x.dtype))
    if self.use_bias:
      y = y + self.param('bias', self.bias_init, (self.features,), jnp.float32).astype(y.dtype)
    return y

  def check_input(self, x):
    """Raises ValueError for an input the layer cannot take (beyond `check_nhwc`)."""
    del x

  def compute(self, x, kernel):
    """The layer's output for x and the kernel (already in x's dtype), without the bias."""
    raise NotImplementedError


def scheme_impls(conv: Callable, docs: Mapping[str, str]) -> Dict[str, Tuple[Callable, str]]:
  """`make_layers` entries, one per scheme in docs (name -> docstring), each computing
  conv(x, kernel, scheme)."""
  def compute(scheme):
    return lambda layer, x, kernel: conv(x, kernel, scheme)
  return {scheme: (compute(scheme), doc) for scheme, doc in docs.items()}


def make_layers(registry: Registry, base: type, suffix: str, module: str,
                impls: Mapping[str, Tuple[Callable, str]]) -> Tuple[type, ...]:
  """One `base` subclass per implementation, registered in `registry` under its name.

  impls: name -> (compute(layer, x, kernel), docstring); module: the __name__ of the module that
  holds the classes. A class is named after its implementation and the suffix ('toom2',
  'Upsample' -> Toom2Upsample), a name flax also uses for unnamed instances, so it must stay
  stable. Returns the classes in the order of impls.
  """
  classes = []
  for name, (compute, doc) in impls.items():
    cls_name = ''.join(part.capitalize() for part in name.split('_')) + suffix
    cls = type(cls_name, (base,), {'__doc__': doc, '__module__': module,
                                   '__qualname__': cls_name, 'compute': compute})
    classes.append(registry.register(name)(cls))
  return tuple(classes)
