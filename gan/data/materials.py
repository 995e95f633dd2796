"""Surface materials of the synthetic products: shading and texture, never hue.

A material turns a product's albedo (its palette colour with the pattern drawn in) into lit pixels
as `c + (255 - c) * S` with `c = albedo * D`: D is a multiplicative light map (diffuse light,
environment reflections, texture) and S the white light reflected off the surface on top of it
(specular highlights, thread crests), so a
material shows even on a black product while the colour's hue is left alone. Each material keeps
the mean of D near 1 and S small, so the mean colour of a product stays nearest its palette entry
(tests/test_synthetic_products.py checks it for every colour and material).

Normals come from the product's signed distance field: the silhouette is inflated into a bevelled
pillow (a quarter-circle profile of radius `bevel` from the outline inwards) with a gentle dome on
top, so glossy materials get a highlight spot inside the product and a rim light along its edges.
Textures are defined in product or image units, not pixels, so a product looks the same at 64 and
128 px, only sharper.
"""
import dataclasses
import functools
from typing import Tuple

import numpy as np

from gan import registry

MATERIALS: Tuple[str, ...] = ('fabric', 'plastic', 'metal', 'leather')

_F = np.float32
_VIEW_Z = 1.0  # Orthographic view straight down the z axis.


@dataclasses.dataclass
class Surface:
  """What a material needs to know about the product being shaded (local product coordinates)."""
  x: np.ndarray          # [S, S] local x
  y: np.ndarray          # [S, S] local y (down)
  sdf: np.ndarray        # [S, S] signed distance to the outline, local units (< 0 inside)
  pix: float             # one pixel in local units
  tone: np.ndarray       # [S, S] multiplicative detail map of the shape (seams, soles, caps)
  light: float           # light direction in the image plane (radians, from above)
  strength: float        # strength of the broad lighting gradient


def _normals(s: Surface, bevel: float, dome: float):
  """Unit normals (nx, ny, nz) of the inflated silhouette."""
  gy, gx = np.gradient(s.sdf, s.pix)          # Outward direction of the outline.
  t = np.clip(-s.sdf, 0.0, bevel)
  height = np.sqrt(np.maximum(bevel * bevel - (bevel - t) ** 2, 1e-6))
  slope = np.minimum((bevel - t) / height, 4.0)  # Quarter circle: vertical at the outline.
  nx = slope * gx + dome * s.x
  ny = slope * gy + dome * s.y
  inv = 1.0 / np.sqrt(nx * nx + ny * ny + 1.0)
  return nx * inv, ny * inv, inv


def _light_vector(angle: float, elevation: float):
  """Unit vector towards the light: `angle` in the image plane, `elevation` above it."""
  c = np.cos(elevation)
  return np.array([np.cos(angle) * c, np.sin(angle) * c, np.sin(elevation)], _F)


def _dot(n, v):
  return n[0] * v[0] + n[1] * v[1] + n[2] * v[2]


def _half_vector(light):
  h = light + np.array([0.0, 0.0, _VIEW_Z], _F)
  return h / np.linalg.norm(h)


@functools.lru_cache(maxsize=16)
def _upsampler(size: int, cells: int):
  """Bilinear interpolation from a cells-point lattice to size pixels: (lower index, weight)."""
  pos = np.clip((np.arange(size) + 0.5) * cells / size - 0.5, 0.0, cells - 1.0)
  lo = np.minimum(np.floor(pos).astype(int), cells - 2)
  return lo, (pos - lo).astype(_F)


def value_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
  """Smooth zero-mean, unit-variance-ish noise [size, size] with `cells` lattice points per side
  of the image (so its grain is fixed in image units, whatever the resolution)."""
  lo, w = _upsampler(size, cells)
  lattice = rng.standard_normal((cells, cells)).astype(_F)
  rows = lattice[lo] * (1.0 - w[:, None]) + lattice[lo + 1] * w[:, None]      # [size, cells]
  noise = rows[:, lo] * (1.0 - w[None]) + rows[:, lo + 1] * w[None]           # [size, size]
  return noise / max(float(noise.std()), 1e-6)


def _expose(d: np.ndarray, s: Surface, target: float) -> np.ndarray:
  """Scales a light map so the product's mean of min(D, 1) is `target`, as a photographer
  exposes for the product: a saturated channel cannot rise above 255, so a map with dark bands
  must lift the rest to keep the product's mean colour on its palette entry."""
  inside = s.sdf < 0
  if not inside.any():
    return d
  k = 1.0
  for _ in range(4):  # min(k D, 1) is monotone in k: a few fixed-point steps settle it.
    k *= target / max(float(np.minimum(k * d[inside], 1.0).mean()), 1e-3)
  return d * _F(min(k, 2.0))


MATERIAL_SHADERS = registry.Registry('material')


@MATERIAL_SHADERS.register('fabric')
def _fabric(s: Surface, rng: np.random.Generator):
  """Matte woven cloth: a fine plain weave and soft, purely diffuse light; no highlight."""
  period = _F(rng.uniform(0.1, 0.125))           # ~3.5 px at 64 px
  angle = rng.uniform(-0.3, 0.3)
  c, sn = np.cos(angle), np.sin(angle)
  u = (c * s.x + sn * s.y) * (2 * np.pi / period)
  v = (-sn * s.x + c * s.y) * (2 * np.pi / period)
  # Warp and weft threads crossing over and under: bumps on a checkerboard of thread crossings.
  weave = np.cos(u) * np.cos(v)
  fuzz = value_noise(rng, s.x.shape[0], 48)
  lit = np.cos(s.light) * s.x + np.sin(s.light) * s.y
  edges = 1.0 - 0.3 * np.exp(np.minimum(s.sdf, 0.0) / 0.05)   # Soft, rounded fabric edges.
  diffuse = (1.1 + 0.6 * s.strength * lit) * edges
  d = 1.02 * diffuse * (1.0 + 0.28 * weave + 0.04 * fuzz) * s.tone
  spec = 0.09 * np.maximum(weave, 0.0)           # Thread crests catch a little light.
  return d, spec


@MATERIAL_SHADERS.register('plastic')
def _plastic(s: Surface, rng: np.random.Generator):
  """Glossy plastic: smooth moulded surface, saturated diffuse light, one sharp white highlight
  and a bright rim along the lit edges."""
  n = _normals(s, bevel=_F(rng.uniform(0.1, 0.14)), dome=_F(rng.uniform(0.9, 1.2)))
  light = _light_vector(s.light, rng.uniform(0.9, 1.15))
  lambert = np.maximum(_dot(n, light), 0.0)
  d = (0.7 + 0.42 * lambert) * s.tone
  n_h = np.maximum(_dot(n, _half_vector(light)), 0.0)
  # A clipped lobe: a pure white core with a short falloff, as a glossy surface shows the lamp.
  spec = np.minimum(1.8 * n_h ** _F(rng.uniform(70, 120)), 1.0)
  return d, spec


@MATERIAL_SHADERS.register('metal')
def _metal(s: Surface, rng: np.random.Generator):
  """Polished metal: a mirror of the studio (bright sky over a dark floor, one tall softbox), so
  hard-edged bands of high contrast run across the product and the softbox shows as a white
  streak, with white glints where upper rims face the top of the sky."""
  n = _normals(s, bevel=_F(rng.uniform(0.16, 0.22)), dome=_F(rng.uniform(1.0, 1.4)))
  # Reflected view ray r = 2 (n . v) n - v with v = (0, 0, 1).
  rx, ry = 2.0 * n[2] * n[0], 2.0 * n[2] * n[1]
  horizon = _F(rng.uniform(0.05, 0.4))
  above = horizon - ry                                       # > 0: the sky (y points down).
  sky = np.clip(0.5 + above / 0.04, 0.0, 1.0)
  band = np.clip(1.0 - np.abs(above - 0.12) / 0.08, 0.0, 1.0)  # Dark line just above the horizon.
  floor = 0.8 - 0.4 * np.clip(-above, 0.0, 1.0)
  d = _expose((sky * 1.3 + (1.0 - sky) * floor) * (1.0 - 0.75 * band) * s.tone, s, 0.88)
  window_x = _F(rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 0.6))
  window = np.clip((0.12 - np.abs(rx - window_x)) / 0.03, 0.0, 1.0)
  glint = np.clip(above - 0.6, 0.0, 1.0)                     # The top of the sky, on upper rims.
  spec = 0.85 * window * (1.0 - band) + 0.6 * glint
  # Thin parts (stems, straps) are mostly rim: cap the white they add, or it greys the colour.
  inside = s.sdf < 0
  white = float(spec[inside].mean()) if inside.any() else 0.0
  return d, spec * _F(min(1.0, 0.1 / max(white, 1e-6)))


@MATERIAL_SHADERS.register('leather')
def _leather(s: Surface, rng: np.random.Generator):
  """Leather: fine pebbled grain, darker burnished edges, a broad soft sheen (no sharp spot) and
  a stitched seam along the outline."""
  n = _normals(s, bevel=_F(rng.uniform(0.06, 0.09)), dome=_F(rng.uniform(0.5, 0.7)))
  light = _light_vector(s.light, rng.uniform(0.8, 1.0))
  lambert = np.maximum(_dot(n, light), 0.0)
  pebbles = np.tanh(1.5 * value_noise(rng, s.x.shape[0], 56))
  burnish = 1.0 - 0.3 * np.exp(np.minimum(s.sdf, 0.0) / 0.045)
  # Stitches: a line a little inside the outline, dashed by a checkerboard (which alternates
  # along every direction the outline can run).
  inset, period = _F(rng.uniform(0.06, 0.075)), _F(rng.uniform(0.09, 0.11))
  line = np.clip(1.0 - np.abs(-s.sdf - inset) / (0.9 * s.pix), 0.0, 1.0)
  a = (np.floor(s.x / period) + np.floor(s.y / period)) % 2
  stitch = line * a
  d = _expose((0.74 + 0.4 * lambert) * (1.0 + 0.1 * pebbles) * burnish * (1.0 - 0.35 * stitch)
              * s.tone, s, 0.94)
  n_h = np.maximum(_dot(n, _half_vector(light)), 0.0)
  spec = 0.22 * n_h ** _F(rng.uniform(6, 9)) * (1.0 + 0.5 * pebbles) + 0.15 * stitch
  return d, spec


assert set(MATERIAL_SHADERS.names()) == set(MATERIALS), 'every material needs a shader'


def shade(material: int, albedo: np.ndarray, surface: Surface,
          rng: np.random.Generator) -> np.ndarray:
  """Lit product pixels float [S, S, 3] in [0, 255] for albedo [S, S, 3] under a material."""
  d, spec = MATERIAL_SHADERS.get(MATERIALS[material])(surface, rng)
  # Light beyond what the brightest channel can show is cut for all channels alike, so bright
  # light never shifts a colour's hue (a saturated orange lit at 1.3 stays orange, not gold).
  peak = np.maximum(albedo.max(axis=-1), 1.0)
  lit = albedo * np.clip(d, 0.0, 255.0 / peak)[..., None]
  spec = np.clip(spec, 0.0, 1.0)[..., None]
  return lit + (255.0 - lit) * spec
