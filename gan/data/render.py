"""Pure-numpy renderer of synthetic product photos (the embedded default catalogue).

Every image is a product silhouette on a light studio background with a soft drop shadow.
Shapes are signed distance fields (SDFs) in a product-local frame, so anti-aliasing is a
clipped ramp of the distance (no supersampling), and scale / offset / rotation are a change
of coordinates. Everything is vectorised over the pixel grid: one 64x64 image costs well
under a millisecond on one core.

Conventions: image coordinates run over [-1, 1] with y pointing down; product-local
coordinates are the image coordinates undone by the per-image similarity transform, and
every product fits inside roughly [-0.8, 0.8]^2 of its local frame.
"""
import collections
import functools
from typing import Optional, Tuple

import numpy as np

from gan import registry
from gan.data import materials

CATEGORIES: Tuple[str, ...] = (
    't-shirt', 'trousers', 'dress', 'handbag', 'sneaker', 'mug', 'bottle', 'lamp')

# CSS colour names, chosen to stay apart after shading (smallest RGB distance between two
# entries is darkorange-gold, 75) and to stay away from the light background (no white,
# no pale tones).
COLOURS: 'collections.OrderedDict[str, Tuple[int, int, int]]' = collections.OrderedDict([
    ('red', (255, 0, 0)),
    ('darkorange', (255, 140, 0)),
    ('gold', (255, 215, 0)),
    ('limegreen', (50, 205, 50)),
    ('teal', (0, 128, 128)),
    ('deepskyblue', (0, 191, 255)),
    ('navy', (0, 0, 128)),
    ('purple', (128, 0, 128)),
    ('hotpink', (255, 105, 180)),
    ('saddlebrown', (139, 69, 19)),
    ('black', (0, 0, 0)),
    ('gray', (128, 128, 128)),
])

PATTERNS: Tuple[str, ...] = ('solid', 'striped', 'dotted', 'checked')

MATERIALS: Tuple[str, ...] = materials.MATERIALS

_F = np.float32
_SHADE_GAIN = 1.08


# ----------------------------------------------------------------------------------------
# SDF primitives. All take local coordinate arrays (x, y) and return distances (< 0 inside).
# ----------------------------------------------------------------------------------------

def sd_box(x, y, cx, cy, hx, hy, r=0.0):
  """Axis-aligned box centred at (cx, cy), half sizes (hx, hy), corner radius r."""
  qx = np.abs(x - cx) - (hx - r)
  qy = np.abs(y - cy) - (hy - r)
  outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
  inside = np.minimum(np.maximum(qx, qy), 0)
  return outside + inside - r


def sd_circle(x, y, cx, cy, r):
  return np.hypot(x - cx, y - cy) - r


def sd_ellipse(x, y, cx, cy, a, b):
  """Approximate ellipse distance (exact on the axes, good enough for soft edges)."""
  return (np.hypot((x - cx) / a, (y - cy) / b) - 1.0) * min(a, b)


def sd_trapezoid(x, y, cx, cy, top, bottom, he):
  """Isosceles trapezoid: half width `top` at y = cy - he, `bottom` at y = cy + he."""
  px = np.abs(x - cx)
  py = y - cy
  ca_x = px - np.minimum(px, np.where(py < 0, top, bottom))
  ca_y = np.abs(py) - he
  k2x, k2y = bottom - top, 2.0 * he
  t = np.clip(((bottom - px) * k2x + (he - py) * k2y) / (k2x * k2x + k2y * k2y), 0.0, 1.0)
  cb_x = px - bottom + k2x * t
  cb_y = py - he + k2y * t
  sign = np.where((cb_x < 0) & (ca_y < 0), -1.0, 1.0).astype(_F)
  return sign * np.sqrt(np.minimum(ca_x * ca_x + ca_y * ca_y, cb_x * cb_x + cb_y * cb_y))


def sd_segment(x, y, ax, ay, bx, by, r):
  """Capsule: the segment (ax, ay)-(bx, by) thickened by r."""
  dx, dy = bx - ax, by - ay
  px, py = x - ax, y - ay
  t = np.clip((px * dx + py * dy) / (dx * dx + dy * dy), 0.0, 1.0)
  return np.hypot(px - t * dx, py - t * dy) - r


def _rot(x, y, cx, cy, angle):
  """Coordinates of (x, y) in a frame rotated by `angle` around (cx, cy)."""
  c, s = np.cos(angle), np.sin(angle)
  dx, dy = x - cx, y - cy
  return c * dx + s * dy, -s * dx + c * dy


# ----------------------------------------------------------------------------------------
# Categories. Each shape function draws its own details from rng and returns
# (sdf, tone) where tone is a multiplicative map (1 = plain colour) for seams, soles, caps.
# ----------------------------------------------------------------------------------------

SHAPES = registry.Registry('product shape')


def _groove(d, width):
  """Soft dark line along the zero level of d (for seams); 1 away from it."""
  return 1.0 - 0.35 * np.clip(1.0 - np.abs(d) / width, 0.0, 1.0)


@SHAPES.register('t-shirt')
def _tshirt(x, y, rng):
  """Flat-lay T-shirt: torso, two sleeves (short to long), crew or V neck."""
  hw = rng.uniform(0.32, 0.4)                # torso half width
  top, bot = -0.55, rng.uniform(0.6, 0.75)
  torso = sd_trapezoid(x, y, 0.0, (top + bot) / 2, hw + 0.03, hw, (bot - top) / 2)
  sleeve_len = rng.uniform(0.22, 0.55)
  sleeve_w = rng.uniform(0.12, 0.16)
  angle = rng.uniform(0.55, 0.85)            # sleeve droop below horizontal
  ax = np.abs(x)                             # symmetric: draw the right sleeve only
  sx, sy = hw - 0.05, top + sleeve_w + 0.02
  ex, ey = sx + sleeve_len * np.cos(angle), sy + sleeve_len * np.sin(angle)
  sleeve = sd_segment(ax, y, sx, sy, ex, ey, sleeve_w)
  body = np.minimum(torso, sleeve)
  if rng.uniform() < 0.5:
    neck = sd_ellipse(x, y, 0.0, top, rng.uniform(0.12, 0.16), rng.uniform(0.08, 0.12))
  else:
    neck = sd_trapezoid(x, y, 0.0, top + 0.05, 0.15, 0.0, 0.14)
  body = np.maximum(body, -neck)
  # Armhole seam: the torso outline seen through the sleeve.
  tone = _groove(np.maximum(np.abs(x) - hw, sleeve), 0.02)
  return body, tone


@SHAPES.register('trousers')
def _trousers(x, y, rng):
  """Flat-lay trousers: waistband, hips, two legs with a gap; shorts to full length."""
  hw = rng.uniform(0.27, 0.33)               # half width at the hips
  waist_y = -0.72
  crotch_y = waist_y + rng.uniform(0.3, 0.38)
  hem_y = rng.uniform(0.3, 0.78)
  gap = rng.uniform(0.04, 0.1)               # half gap between the hems
  hem_w = rng.uniform(0.1, 0.16)             # half width of a hem: skinny to wide legs
  outer = gap + 2 * hem_w                    # outer seam at the hem (tapered or flared)
  ax = np.abs(x)
  hips = sd_box(ax, y, 0.0, (waist_y + crotch_y) / 2, hw, (crotch_y - waist_y) / 2, 0.02)
  # A leg lies between its inner seam (crotch -> hem) and its outer seam.
  t = np.clip((y - crotch_y) / (hem_y - crotch_y), 0.0, 1.0)
  inner_x = gap * t
  outer_x = hw + (outer - hw) * t
  leg = np.maximum(np.maximum(inner_x - ax, ax - outer_x),
                   np.maximum(crotch_y - 0.05 - y, y - hem_y))
  body = np.minimum(hips, leg)
  waistband = y - (waist_y + 0.08)
  fly = sd_segment(x, y, 0.0, waist_y + 0.1, 0.0, crotch_y - 0.02, 0.0)
  tone = _groove(waistband, 0.02) * _groove(fly, 0.015)
  return body, tone


@SHAPES.register('dress')
def _dress(x, y, rng):
  """Dress: fitted bodice, flared skirt, straps or cap sleeves."""
  waist_y = rng.uniform(-0.2, -0.05)
  top_y = -0.55
  bodice_w = rng.uniform(0.18, 0.24)
  hem_y = rng.uniform(0.55, 0.8)
  hem_w = rng.uniform(0.45, 0.65)
  bodice = sd_trapezoid(x, y, 0.0, (top_y + waist_y) / 2, bodice_w + 0.04, bodice_w,
                        (waist_y - top_y) / 2)
  skirt = sd_trapezoid(x, y, 0.0, (waist_y + hem_y) / 2, bodice_w, hem_w, (hem_y - waist_y) / 2)
  ax = np.abs(x)
  if rng.uniform() < 0.5:   # thin straps
    strap = sd_segment(ax, y, bodice_w * 0.55, top_y, bodice_w * 0.65, top_y - 0.2, 0.025)
  else:                     # cap sleeves
    strap = sd_ellipse(ax, y, bodice_w + 0.06, top_y + 0.06, 0.12, 0.08)
  body = np.minimum(np.minimum(bodice, skirt), strap)
  neck = sd_ellipse(x, y, 0.0, top_y, bodice_w * 0.6, rng.uniform(0.06, 0.14))
  body = np.maximum(body, -neck)
  tone = _groove(y - waist_y, 0.02)
  return body, tone


@SHAPES.register('handbag')
def _handbag(x, y, rng):
  """Handbag: trapezoid body, round or square top handle, flap seam."""
  top_y = rng.uniform(-0.15, 0.0)
  bot_y = 0.65
  hw = rng.uniform(0.48, 0.62)
  body = sd_trapezoid(x, y, 0.0, (top_y + bot_y) / 2, hw - rng.uniform(0.05, 0.15), hw,
                      (bot_y - top_y) / 2)
  hr = rng.uniform(0.25, 0.35)               # handle half width
  thick = rng.uniform(0.035, 0.055)
  hh = rng.uniform(0.3, 0.5)                 # handle height
  if rng.uniform() < 0.5:                    # arc
    ring = np.abs(sd_ellipse(x, y, 0.0, top_y, hr, hh)) - thick
  else:                                      # squared strap
    ring = np.abs(sd_box(x, y, 0.0, top_y, hr, hh, 0.1)) - thick
  handle = np.maximum(ring, y - top_y)
  body = np.minimum(body, handle)
  flap_y = top_y + rng.uniform(0.2, 0.3)
  flap = y - flap_y - 0.1 * (1 - (x / hw) ** 2)
  tone = _groove(flap, 0.02)
  return body, tone


@SHAPES.register('sneaker')
def _sneaker(x, y, rng):
  """Side view of a sneaker: low toe, sloped vamp, high heel collar, sole of varying height."""
  x = x * (1.0 if rng.uniform() < 0.5 else -1.0)   # faces left or right
  sole_h = rng.uniform(0.05, 0.1)
  sole_top = 0.32
  sole = sd_box(x, y, 0.0, sole_top + sole_h, 0.8, sole_h, sole_h * 0.8)
  ankle = rng.uniform(0.5, 0.68)             # collar height at the heel
  toe_h = rng.uniform(0.2, 0.28)
  toe = sd_ellipse(x, y, -0.35, sole_top, 0.45, toe_h)
  heel = sd_box(x, y, 0.42, sole_top - ankle / 2, 0.34, ankle / 2, 0.14)
  vamp = sd_segment(x, y, -0.35, sole_top - toe_h * 0.55, 0.15, sole_top - ankle * 0.75, 0.16)
  upper = np.maximum(np.minimum(np.minimum(toe, heel), vamp), y - sole_top - 0.02)
  collar = sd_ellipse(x, y, 0.32, sole_top - ankle, 0.2, 0.08)
  upper = np.maximum(upper, -collar)
  body = np.minimum(upper, sole)
  in_sole = np.clip(0.5 - (y - sole_top) / 0.02, 0.0, 1.0)
  tone = 1.0 - 0.25 * (1.0 - in_sole)        # darker sole
  lace = sd_segment(x, y, -0.3, sole_top - toe_h * 0.9, 0.12, sole_top - ankle * 0.85, 0.0)
  tone = tone * _groove(lace, 0.03)
  return body, tone


@SHAPES.register('mug')
def _mug(x, y, rng):
  """Mug: rounded cylinder, rim ellipse, round or D-shaped side handle."""
  x = x * (1.0 if rng.uniform() < 0.5 else -1.0)   # handle on either side
  hw = rng.uniform(0.3, 0.42)
  top_y, bot_y = -0.5, rng.uniform(0.45, 0.6)
  cx = -0.12
  body = sd_box(x, y, cx, (top_y + bot_y) / 2, hw, (bot_y - top_y) / 2, 0.06)
  bottom = sd_ellipse(x, y, cx, bot_y - 0.05, hw, 0.06)
  body = np.minimum(body, bottom)
  hcx, hcy = cx + hw, (top_y + bot_y) / 2 - 0.05
  hr, hh = rng.uniform(0.17, 0.25), rng.uniform(0.18, 0.28)
  if rng.uniform() < 0.5:
    ring = np.abs(sd_ellipse(x, y, hcx, hcy, hr, hh)) - 0.055
  else:
    ring = np.abs(sd_box(x, y, hcx, hcy, hr, hh, 0.1)) - 0.055
  handle = np.maximum(ring, cx + hw * 0.8 - x)
  body = np.minimum(body, handle)
  rim = sd_ellipse(x, y, cx, top_y + 0.02, hw - 0.04, 0.06)
  tone = 1.0 - 0.45 * np.clip(0.5 - rim / 0.02, 0.0, 1.0)   # the dark inside of the mug
  return body, tone


@SHAPES.register('bottle')
def _bottle(x, y, rng):
  """Bottle: body, round or sloped shoulder, neck, darker cap."""
  hw = rng.uniform(0.18, 0.28)
  bot_y = 0.75
  shoulder_y = rng.uniform(-0.2, 0.05)
  neck_w = rng.uniform(0.07, 0.1)
  neck_top = rng.uniform(-0.62, -0.5)
  body = sd_box(x, y, 0.0, (shoulder_y + bot_y) / 2, hw, (bot_y - shoulder_y) / 2, 0.06)
  sh_h = rng.uniform(0.12, 0.25)
  if rng.uniform() < 0.5:
    shoulder = sd_ellipse(x, y, 0.0, shoulder_y, hw, sh_h)
  else:
    shoulder = sd_trapezoid(x, y, 0.0, shoulder_y - sh_h / 2, neck_w, hw, sh_h / 2)
  neck = sd_box(x, y, 0.0, (neck_top + shoulder_y) / 2, neck_w, (shoulder_y - neck_top) / 2)
  cap_h = rng.uniform(0.06, 0.1)
  cap = sd_box(x, y, 0.0, neck_top - cap_h + 0.01, neck_w + 0.02, cap_h, 0.02)
  body = np.minimum(np.minimum(body, shoulder), np.minimum(neck, cap))
  in_cap = np.clip(0.5 - (y - neck_top) / 0.02, 0.0, 1.0)
  label_y = rng.uniform(0.2, 0.35)
  label = np.abs(y - label_y) - 0.18
  tone = (1.0 - 0.45 * in_cap) * _groove(label, 0.015)
  return body, tone


@SHAPES.register('lamp')
def _lamp(x, y, rng):
  """Table lamp: flared shade (narrow to wide), thin stem, round base."""
  shade_top, shade_bot = -0.75, rng.uniform(-0.35, -0.2)
  bottom_w = rng.uniform(0.35, 0.55)
  top_w = bottom_w * rng.uniform(0.45, 0.8)
  shade = sd_trapezoid(x, y, 0.0, (shade_top + shade_bot) / 2, top_w, bottom_w,
                       (shade_bot - shade_top) / 2)
  base_y = 0.68
  stem = sd_box(x, y, 0.0, (shade_bot + base_y) / 2, rng.uniform(0.025, 0.045),
                (base_y - shade_bot) / 2)
  base_w = rng.uniform(0.2, 0.32)
  base = sd_ellipse(x, y, 0.0, base_y, base_w, 0.08)
  base = np.minimum(base, sd_box(x, y, 0.0, base_y + 0.04, base_w, 0.04, 0.02))
  body = np.minimum(np.minimum(shade, stem), base)
  in_shade = np.clip(0.5 - (y - shade_bot) / 0.02, 0.0, 1.0)
  tone = 1.0 - 0.2 * (1.0 - in_shade)        # darker stem and base
  return body, tone


assert set(SHAPES.names()) == set(CATEGORIES), 'every category needs a shape'


# ----------------------------------------------------------------------------------------
# Patterns: alpha in [0, 1] of the secondary tone, anti-aliased in local coordinates.
# ----------------------------------------------------------------------------------------

def _band(t, period, pix):
  """Soft square wave along t: 1 on half of each period, ramps one pixel wide."""
  phase = t / period - np.floor(t / period)
  d = (np.abs(phase - 0.5) - 0.25) * period
  return np.clip(0.5 - d / pix, 0.0, 1.0)


def _pattern_alpha(name, x, y, pix, rng):
  # Drawn for every pattern, so the nuisance draws after it do not depend on the pattern.
  period = rng.uniform(0.22, 0.32)
  ox, oy = rng.uniform(0, period, size=2)
  if name == 'solid':
    return None
  if name == 'striped':
    if rng.uniform() < 0.7:                  # mostly horizontal, sometimes vertical
      return _band(y + oy, period, pix)
    return _band(x + ox, period, pix)
  if name == 'dotted':
    u = (x + ox) / period
    v = (y + oy) / period
    du = (u - np.round(u)) * period
    dv = (v - np.round(v)) * period
    d = np.hypot(du, dv) - period * rng.uniform(0.24, 0.32)
    return np.clip(0.5 - d / pix, 0.0, 1.0)
  if name == 'checked':
    a = _band(x + ox, period, pix)
    b = _band(y + oy, period, pix)
    return a + b - 2.0 * a * b               # soft xor
  raise ValueError(f'Unknown pattern {name!r}. Valid patterns: {", ".join(PATTERNS)}.')


def secondary_tone(rgb) -> np.ndarray:
  """Pattern colour for a product colour: darker for light colours, lighter for dark."""
  c = np.asarray(rgb, _F)
  lum = (0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]) / 255.0
  if lum > 0.5:
    return c * 0.45
  return c + (255.0 - c) * 0.75


# ----------------------------------------------------------------------------------------
# Rendering.
# ----------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=8)
def _grid(size: int):
  """Pixel-centre coordinates over [-1, 1], y down."""
  t = (np.arange(size, dtype=_F) + 0.5) * (2.0 / size) - 1.0
  return np.broadcast_to(t[None, :], (size, size)), np.broadcast_to(t[:, None], (size, size))


def _check(name, value, n):
  if not isinstance(value, (int, np.integer)) or not 0 <= value < n:
    raise ValueError(f'{name} must be an int in [0, {n}), got {value!r}.')


def render_product_with_mask(category: int, colour: int, pattern: int,
                             rng: np.random.Generator, size: int = 64,
                             material: Optional[int] = None):
  """Renders one product photo and returns (image uint8 [size,size,3], coverage float32 [size,size]).

  The coverage is the anti-aliased product silhouette (1 inside, 0 on the background); it
  lets tests and tools pick the product pixels. material: an index into MATERIALS, or None for
  the plain satin look of synthetic_products 1.0.0 (rendered exactly as that version was).
  """
  _check('category', category, len(CATEGORIES))
  _check('colour', colour, len(COLOURS))
  _check('pattern', pattern, len(PATTERNS))
  if material is not None:
    _check('material', material, len(MATERIALS))
  if not isinstance(size, (int, np.integer)) or size < 8:
    raise ValueError(f'size must be an int >= 8, got {size!r}.')

  gx, gy = _grid(int(size))
  pix = _F(2.0 / size)                       # one pixel in image units

  # Similarity transform image -> local: small rotation, scale, offset.
  scale = _F(rng.uniform(0.82, 1.02))
  angle = rng.uniform(-0.14, 0.14)
  ox, oy = rng.uniform(-0.06, 0.06, size=2)
  c, s = _F(np.cos(angle)), _F(np.sin(angle))
  dx, dy = gx - _F(ox), gy - _F(oy)
  x = (c * dx + s * dy) / scale
  y = (-s * dx + c * dy) / scale
  pix_local = pix / scale

  sdf, tone = SHAPES.get(CATEGORIES[category])(x, y, rng)
  d_img = sdf * scale                         # distances in image units
  coverage = np.clip(0.5 - d_img / pix, 0.0, 1.0).astype(_F)

  # Studio background: light, vertical gradient, slight warm/cool tint per image.
  level = rng.uniform(0.84, 0.95)
  grad = rng.uniform(-0.1, 0.06)
  tint = rng.uniform(-0.025, 0.025) * np.array([1.0, 0.0, -1.0], _F)
  ramp = (level + grad * 0.5 * gy[:, :1]).astype(_F)           # [size, 1]
  bg = 255.0 * np.clip(ramp[..., None] + tint, 0.0, 1.0)        # [size, 1, 3]

  # Soft drop shadow: the silhouette shifted down-right, with a wide distance ramp.
  shift_x = int(round(rng.uniform(0.5, 2.5) * size / 64))
  shift_y = int(round(rng.uniform(1.5, 3.5) * size / 64))
  blur = _F(rng.uniform(3.0, 6.0) * pix * size / 64)
  shifted = np.full_like(d_img, 10.0)
  shifted[shift_y:, shift_x:] = d_img[:size - shift_y, :size - shift_x]
  shadow = np.clip(0.5 - shifted / blur, 0.0, 1.0)
  shadow = shadow * shadow * (3.0 - 2.0 * shadow) * _F(rng.uniform(0.25, 0.4))
  img = bg * (1.0 - shadow)[..., None]

  # Product colour with pattern, lighting gradient, edge falloff and a soft highlight.
  base = np.asarray(list(COLOURS.values())[colour], _F)
  alpha = _pattern_alpha(PATTERNS[pattern], x, y, pix_local, rng)
  if alpha is None:
    albedo = np.broadcast_to(base, (size, size, 3))
  else:
    second = secondary_tone(base)
    albedo = base + alpha[..., None] * (second - base)
  light = rng.uniform(-np.pi, 0.0)           # light from somewhere above
  strength = rng.uniform(0.1, 0.22)
  if material is None:
    prod = _satin(albedo, x, y, sdf, tone, light, strength, rng)
  else:
    surface = materials.Surface(x, y, sdf, pix_local, tone, light, strength)
    prod = materials.shade(material, albedo, surface, rng)

  cov = coverage[..., None]
  img = img + cov * (prod - img)
  return np.round(img).astype(np.uint8), coverage


def _satin(albedo, x, y, sdf, tone, light, strength, rng):
  """The one surface of synthetic_products 1.0.0: a soft gradient, rounded edges, a faint sheen."""
  lit = (np.cos(light) * x + np.sin(light) * y).astype(_F)
  # The gain keeps the mean brightness of the product near its catalogue colour, so the
  # colour label stays the nearest palette entry to what is seen.
  edges = 1.0 - 0.22 * np.exp(np.minimum(sdf, 0.0) / 0.06)             # rounded edges
  shade = (_SHADE_GAIN + strength * lit) * tone * edges
  sheen = _F(rng.uniform(0.04, 0.1)) * np.maximum(lit, 0.0) ** 2
  prod = albedo * shade[..., None] + (255.0 - albedo) * sheen[..., None]
  return np.clip(prod, 0.0, 255.0)


def render_product(category: int, colour: int, pattern: int, rng: np.random.Generator,
                   size: int = 64, material: Optional[int] = None) -> np.ndarray:
  """Renders one product photo as uint8 [size, size, 3]; deterministic given rng's state."""
  return render_product_with_mask(category, colour, pattern, rng, size, material)[0]
