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
  'toom2', 'toom4'  Toom-Cook tiles of 2 / 4 inputs per axis (`toomcook`, which explains them).
  'fast'            (DEFAULT_UPSAMPLER) per-shape choice of the above, tuned on XLA CPU: the
                    scheme (`choose_scheme`) and batch slices (`toomcook.choose_chunks`) on CPU in
                    float32 (`toomcook.fast_path`), the reference elsewhere.

Measured (experiments/bench_layers.py, batch 64, fwd + both gradients, one core vs PyTorch 2.13 on
one thread): 1.4-1.5x PyTorch on the 512/256/128-channel layers, 1.7x on the RGB layer.

Differentiation: reverse mode (grad, vjp, grad-of-grad as in R1 penalties), jit and vmap work for
every implementation. Forward mode (jax.jvp, jacfwd, hessian) works only for 'conv_transpose'
(and for 'fast' off CPU), because the others use jax.custom_vjp.
"""
import jax
import jax.numpy as jnp
from jax import lax

from gan.models import toomcook
from gan.models.toomcook import SCHEMES, batched_matmul, kern, kin, pout, tiles_for
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
# The Toom-Cook / GEMM implementation.

def fast_conv_transpose(x, kernel, scheme: str, chunks: int = 1):
  """Transposed conv k=4 s=2 p=1 (PyTorch semantics, kernel [4, 4, Cin, Cout]) with a scheme of
  toomcook.SCHEMES, in `chunks` batch slices: y = pout(kin(x) @ kern(kernel))."""
  s = SCHEMES[scheme]
  _, h, w, _ = x.shape
  u = kern(scheme, 'up', kernel)
  run = lambda g, x: pout(scheme, g, batched_matmul(kin(scheme, g, x), u))
  tiles = (tiles_for(h, s.tile), tiles_for(w, s.tile))
  return toomcook.on_tiles(run, x, tiles, s.tile, chunks)[:, :2 * h, :2 * w]


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


# --------------------------------------------------------------------------------------------
# Modules: one class per implementation, registered under its name.

def _fast(layer, x, kernel):
  if not toomcook.fast_path(x):
    return conv_transpose_reference(x, kernel)
  n, h, w, c = x.shape
  scheme = choose_scheme(h, w, c, layer.features)
  return fast_conv_transpose(x, kernel, scheme, toomcook.choose_chunks(scheme, n, h, w))


(ConvTransposeUpsample, XlaVjpUpsample, GemmUpsample, Toom2Upsample, Toom4Upsample,
 FastUpsample) = toomcook.make_layers(UPSAMPLERS, toomcook.Stride2Layer, 'Upsample', __name__, {
     'conv_transpose': (lambda layer, x, kernel: conv_transpose_reference(x, kernel),
                        "Reference: XLA's conv_transpose (slow gradient on CPU)."),
     'xla_vjp': (lambda layer, x, kernel: conv_transpose_xla_vjp(x, kernel),
                 "XLA's conv_transpose forward; backward as ordinary convolutions "
                 '(`conv_transpose_xla_vjp`).'),
     **toomcook.scheme_impls(fast_conv_transpose, {
         'gemm': 'One GEMM to all 16 kernel taps, then overlap-add.',
         'toom2': 'Karatsuba tiles of 2x2 inputs: 0.56x the GEMM FLOPs.',
         'toom4': 'Toom-3 tiles of 4x4 inputs: 0.39x the GEMM FLOPs.',
     }),
     'fast': (_fast, 'On CPU in float32, the fastest scheme and batch chunking for the layer '
                     'shape (`choose_scheme`, `toomcook.choose_chunks`); otherwise the reference.'),
 })
