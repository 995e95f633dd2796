"""4x4 stride-2 convolutions (the DCGAN downsampling layer), fast on XLA CPU.

Every implementation in `DOWNSAMPLERS` computes exactly PyTorch's
`Conv2d(Cin, features, kernel_size=4, stride=2, padding=1)` on NHWC inputs
([N, H, W, Cin] -> [N, H // 2, W // 2, features]) and holds the same parameters with the same
meaning as flax's nn.Conv(features, (4, 4), (2, 2), padding=((1, 1), (1, 1))):

  'kernel' [4, 4, Cin, features]:  y[i, j, o] = sum x[2i - 1 + kh, 2j - 1 + kw, c] * kernel[kh, kw, c, o]
  'bias'   [features]              (only with use_bias=True)

(PyTorch's weight [Cout, Cin, kh, kw] transposed to (kh, kw, Cin, Cout)), so the implementation is
a pure speed choice, interchangeable in a checkpoint.

Implementations:

  'conv'            the reference, XLA's convolution, as nn.Conv runs it.
  'gemm'            im2col to all 16 taps, then one GEMM.
  'toom2', 'toom4'  Toom-Cook tiles (`toomcook`, which explains them), run in reverse.
  'fast'            (DEFAULT_DOWNSAMPLER) per-shape choice of the above, tuned on XLA CPU: the
                    scheme (`choose_scheme`) and batch slices (`toomcook.choose_chunks`) on CPU in
                    float32 (`toomcook.fast_path`), the reference elsewhere.

XLA CPU's own conv is correct and not pathological here (its input gradient, a transposed conv,
runs at ordinary-conv speed), but it runs at ~0.6-0.7x PyTorch on the DCGAN layers. This layer is
the exact adjoint (w.r.t. its input) of the transposed conv in `upconv`, so the fast
implementations run the engine's transforms in reverse order:
  y = kin^T( pout^T(x) @ U_d ),
one batched GEMM between two cheap transforms; its gradients use the same pieces.
Measured (experiments/bench_layers.py, batch 64, fwd + both gradients, one core vs PyTorch 2.13 on
one thread): 1.4-1.5x PyTorch on the 64/128/256-channel layers, 1.6x on the RGB layer.

Differentiation: as in `upconv`, reverse mode, jit and vmap work for every implementation;
forward mode (jax.jvp, jacfwd) only for 'conv' (and for 'fast' off CPU).
"""
from jax import lax

from gan.models import toomcook
from gan.models.toomcook import SCHEMES, batched_matmul, kern, kin_t, pout_t, tiles_for
from gan.registry import Registry

DOWNSAMPLERS = Registry('downsampling implementation')
DEFAULT_DOWNSAMPLER = 'fast'


def conv_reference(x, kernel):
  """PyTorch Conv2d(k=4, s=2, p=1) semantics through XLA's convolution (what nn.Conv runs)."""
  return lax.conv_general_dilated(x, kernel, (2, 2), ((1, 1), (1, 1)),
                                  dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


def fast_conv(x, kernel, scheme: str, chunks: int = 1):
  """Conv k=4 s=2 p=1 (PyTorch semantics, kernel [4, 4, Cin, Cout]) with a scheme of
  toomcook.SCHEMES, in `chunks` batch slices: y = kin_t(pout_t(x) @ kern(kernel, 'down'))."""
  s = SCHEMES[scheme]
  _, h, w, _ = x.shape
  u = kern(scheme, 'down', kernel)
  run = lambda g, x: kin_t(scheme, g, batched_matmul(pout_t(scheme, g, x), u))
  # Output row i reads input rows 2i-1 .. 2i+2; tiles must cover input row 2*(H//2) when H is odd.
  tiles = (tiles_for(-(-h // 2), s.tile), tiles_for(-(-w // 2), s.tile))
  return toomcook.on_tiles(run, x, tiles, 2 * s.tile, chunks)[:, :h // 2, :w // 2]


def choose_scheme(height: int, width: int, in_features: int, features: int) -> str:
  """The fastest scheme for a layer shape (input size), from experiments/bench_layers.py.

  Few input channels (the RGB layer): im2col + one GEMM. Otherwise Toom-Cook.
  """
  if in_features <= 16:
    return 'gemm'
  if min(height, width) >= 16:
    return 'toom4'
  return 'toom2'


# Modules: one class per implementation, registered under its name.

def _fast(layer, x, kernel):
  if not toomcook.fast_path(x):
    return conv_reference(x, kernel)
  n, h, w, c = x.shape
  scheme = choose_scheme(h, w, c, layer.features)
  # The conv is the transposed conv of its output size run backwards; see choose_chunks.
  return fast_conv(x, kernel, scheme, toomcook.choose_chunks(scheme, n, -(-h // 2), -(-w // 2)))


class _Downsample(toomcook.Stride2Layer):
  """The shared parameters and checks, plus a minimum input size."""

  def check_input(self, x):
    if x.shape[1] < 2 or x.shape[2] < 2:
      raise ValueError(f'{type(self).__name__} needs height and width >= 2 (output is H // 2, '
                       f'W // 2), got input shape {x.shape}.')


(ConvDownsample, GemmDownsample, Toom2Downsample, Toom4Downsample,
 FastDownsample) = toomcook.make_layers(DOWNSAMPLERS, _Downsample, 'Downsample', __name__, {
     'conv': (lambda layer, x, kernel: conv_reference(x, kernel),
              "Reference: XLA's convolution, as "
              'nn.Conv(features, (4, 4), (2, 2), padding=((1, 1), (1, 1))).'),
     **toomcook.scheme_impls(fast_conv, {
         'gemm': 'im2col to all 16 taps, then one GEMM.',
         'toom2': 'Karatsuba (transposed): 0.56x the GEMM FLOPs.',
         'toom4': 'Toom-3 (transposed): 0.39x the GEMM FLOPs.',
     }),
     'fast': (_fast, 'On CPU in float32, the fastest scheme and batch chunking for the layer '
                     'shape (`choose_scheme`, `toomcook.choose_chunks`); otherwise the reference.'),
 })
