"""The Toom-Cook transforms of `toomcook` (kin, kin_t, pout, pout_t) as one native pass each.

Same functions as toomcook's pure-XLA `kin_xla`, `kin_t_xla`, `pout_xla`, `pout_t_xla` (taking
the `Scheme` itself rather than its name), computed by the `productgan_tiled_transform` FFI kernel
(gan/models/native/tiled_transform.cc). Each call passes the kernel a table: for every output
run of a tile, the weighted input runs it sums. The tables are the 2-D products of a scheme's 1-D
terms (`Scheme.inp_terms`, `Scheme.out_terms` and their transposes) with the memory offsets of the
two layouts involved:

  image  [N, TH*S, TW*S, C]              S slots per tile and axis (S = T, or 2T for outputs)
  points [P, P, N, TH, TW, Q, Q, C]      (= [P*P, N*TH*TW, Q*Q*C]) the GEMM operands

`toomcook.use_native(op, scheme, x)` says when the native pass applies and is the faster one.
"""
import functools
from typing import Callable, Dict, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from gan.models import native

TARGET = 'productgan_tiled_transform'
# Below this many contiguous floats per run, the kernel's per-run overhead loses to XLA's fused
# loops (measured on the RGB layers' 3-channel runs: 4-20x slower).
MIN_CHANNELS = 16

# A layout: ((n, th, tw) strides of a tile, h-slot -> offset, w-slot -> offset).
Layout = Tuple[Tuple[int, int, int], Callable, Callable]


def _image_layout(g, slots: int, c: int) -> Layout:
  _, th, tw = g
  width = tw * slots * c
  return (th * slots * width, slots * width, slots * c), (lambda i: i[0] * width), (
      lambda i: i[0] * c)


def _points_layout(g, p: int, q: int, c: int) -> Layout:
  """[P, P, N, TH, TW, Q, Q, C]: a slot is (point,) or (point, sub-phase)."""
  n, th, tw = g
  run = q * q * c
  plane = n * th * tw * run
  sub = lambda i: i[1] if len(i) > 1 else 0
  return ((th * tw * run, tw * run, run), (lambda i: i[0] * p * plane + sub(i) * q * c),
          (lambda i: i[0] * plane + sub(i) * c))


def _tables(terms, out_slots: Sequence, in_layout: Layout, out_layout: Layout) -> Dict:
  """The kernel's tables: per boundary class (first/last tile row x first/last tile column),
  per output slot (h, w), the coefficients and absolute input offsets of its terms; and the
  distinct input runs of a tile, which the kernel prefetches."""
  (_, in_sth, in_stw), in_h, in_w = in_layout
  _, out_h, out_w = out_layout
  slot_out = [out_h(a) + out_w(b) for a in out_slots for b in out_slots]
  start, coef, off, runs = [], [], [], set()
  kept = lambda dt, cls: not ((cls & 1 and dt < 0) or (cls & 2 and dt > 0))
  for cls in range(16):
    row_cls, col_cls = divmod(cls, 4)
    for a in out_slots:
      for b in out_slots:
        start.append(len(coef))
        for ch, ih, dh in terms.get(a, ()):
          for cw, iw, dw in terms.get(b, ()):
            if kept(dh, row_cls) and kept(dw, col_cls):
              coef.append(ch * cw)
              off.append(in_h(ih) + in_w(iw) + dh * in_sth + dw * in_stw)
              runs.add(in_h(ih) + in_w(iw))
    start.append(len(coef))
  return dict(slot_out=np.asarray(slot_out, np.int64), start=np.asarray(start, np.int64),
              coef=np.asarray(coef, np.float32), off=np.asarray(off, np.int64),
              prefetch=np.asarray(sorted(runs), np.int64))


@functools.lru_cache(maxsize=None)
def _plan(op: str, s, g: Tuple[int, int, int], c: int):
  """(output shape, geometry, tables) of one transform: op in kin, kin_t, pout, pout_t; s the
  Scheme; g = (N, TH, TW); c the channels per run (C, or Co for the products)."""
  n, th, tw = g
  p, q, t = s.points, s.sub, s.tile
  # The GEMM's input operand V (one sub-phase) and its products M (Q*Q sub-phases); the layer's
  # input image (T slots per tile and axis) and output image (2T slots).
  operand, products = _points_layout(g, p, 1, c), _points_layout(g, p, q, c)
  image, image_out = _image_layout(g, t, c), _image_layout(g, 2 * t, c)
  rows = n * th * tw
  out_shape, terms, slots, src, dst = {
      'kin': ((p * p, rows, c), s.inp_terms, [(i,) for i in range(p)], image, operand),
      'kin_t': ((n, th * t, tw * t, c), s.inp_terms_t, [(j,) for j in range(t)], operand, image),
      'pout': ((n, th * 2 * t, tw * 2 * t, c), s.out_terms, [(r,) for r in range(2 * t)],
               products, image_out),
      'pout_t': ((p * p, rows, q * q * c), s.out_terms_t,
                 [(i, k) for i in range(p) for k in range(q)], image_out, products),
  }[op]
  geometry = np.asarray([*g, c, *src[0], *dst[0]], np.int64)
  return out_shape, geometry, _tables(terms, slots, src, dst)


def _call(op: str, s, g, x, c: int):
  if native.load() is None:
    raise RuntimeError('The native tiled-transform kernel is not available (see the warning '
                       'logged by gan.models.native); use the pure-XLA transforms.')
  out_shape, geometry, tables = _plan(op, s, tuple(g), c)
  return jax.ffi.ffi_call(TARGET, jax.ShapeDtypeStruct(out_shape, jnp.float32),
                          vmap_method='sequential')(x, geometry=geometry, **tables)


def kin(s, g, x):
  """x [N, T TH, T TW, C] -> V [P*P, N*TH*TW, C]."""
  return _call('kin', s, g, x, x.shape[-1])


def kin_t(s, g, v):
  """V [P*P, N*TH*TW, C] -> x [N, T TH, T TW, C]."""
  return _call('kin_t', s, g, v, v.shape[-1])


def pout(s, g, m):
  """Products [P*P, N*TH*TW, Q*Q*Co] -> y [N, 2T TH, 2T TW, Co]."""
  return _call('pout', s, g, m, m.shape[-1] // s.sub ** 2)


def pout_t(s, g, d):
  """y [N, 2T TH, 2T TW, Co] -> products [P*P, N*TH*TW, Q*Q*Co]."""
  return _call('pout_t', s, g, d, d.shape[-1])
