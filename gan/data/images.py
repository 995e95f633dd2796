"""Decode any product photo into a square uint8 RGB array (pure functions over Pillow).

What goes in: JPEG, PNG (8/16-bit, palette), WebP, GIF (first frame), TIFF, BMP, ... in
any Pillow mode (1, L, I;16, I, F, P, LA, PA, RGB, RGBA, CMYK, YCbCr) and any size or
aspect ratio. What comes out: `np.uint8 [R, R, 3]`.

Choices, and why:
- EXIF orientation is applied (`ImageOps.exif_transpose`) so phone photos stand upright.
  A broken EXIF block is ignored (the pixels are still good).
- Transparent pixels (RGBA, LA, PA, P/L/RGB with a transparency key) are alpha-composited
  on the background colour: white by default, the given colour when one is given,
  white when the background is 'auto' (the border cannot be estimated before compositing).
- 16-bit images are scaled to 8 bits (v * 255 / 65535), not clipped.
- 'pad' (default) keeps the whole product: the long side is scaled to R and the short side
  is padded symmetrically with the background colour. Never stretches.
  'crop' takes the centred square of side min(w, h), then scales it to R.
- Background default: white (255, 255, 255), because most catalogue photos are shot on
  white. `background='auto'` uses the per-channel median of the border pixels of the
  scaled image instead (good for grey studio backdrops).
- Downsampling is LANCZOS with `reducing_gap=3` (a box pre-reduction to >= 3x the target,
  then LANCZOS: same quality, ~7x faster on big photos). Large JPEGs are decoded with
  DCT scaling (`Image.draft`) to no less than 3x the target size for the same reason.
- Truncated files are errors: `ImageFile.LOAD_TRUNCATED_IMAGES` is forced to False while
  decoding, and `load()` is called so the whole stream is read.
"""
import io
import os
import re
from typing import Optional, Sequence, Tuple, Union
import warnings

import numpy as np
from PIL import Image
from PIL import ImageFile
from PIL import ImageOps
from PIL import UnidentifiedImageError

from gan.registry import Registry

Colour = Tuple[int, int, int]
Background = Union[Colour, Sequence[int], str]

WHITE: Colour = (255, 255, 255)

# File name endings that claim to be an image: an unidentifiable file with one of these
# is 'corrupt'; without one it is 'not_an_image'.
IMAGE_EXTENSIONS = frozenset({
    '.jpg', '.jpeg', '.jpe', '.jfif', '.png', '.webp', '.gif', '.bmp', '.dib', '.tif',
    '.tiff', '.ppm', '.pgm', '.pbm', '.pnm', '.tga', '.ico', '.jp2', '.j2k', '.avif',
    '.heic', '.heif',
})

# Every reason an ImageError can carry (the build report groups skipped files by these).
REASONS = {
    'empty': 'the file has 0 bytes',
    'unreadable': 'the file could not be read from disk',
    'not_an_image': 'not an image file Pillow can identify',
    'corrupt': 'an image file whose data cannot be decoded',
    'truncated': 'an image file that ends early (incomplete download or copy)',
    'too_large': 'more pixels than the limit (decompression-bomb guard, checked before decoding)',
    'bad_aspect': 'one side more than --max-aspect times the other (a strip, not a product photo)',
    'unsupported': 'an image mode that cannot be converted to RGB',
}

# How a decoded image becomes a square: name -> fn(image, resolution, background).
FIT = Registry('fit')


class ImageError(ValueError):
  """A file that cannot become a training image. `reason` is a key of REASONS."""

  def __init__(self, reason: str, detail: str = ''):
    if reason not in REASONS:
      raise ValueError(f'Unknown ImageError reason {reason!r}; use one of {sorted(REASONS)}.')
    self.reason = reason
    self.detail = detail
    super().__init__(f'{reason}: {detail}' if detail else f'{reason}: {REASONS[reason]}')


def is_image_name(path: Union[str, os.PathLike]) -> bool:
  """Whether the file name ends like an image file."""
  return os.path.splitext(os.fspath(path))[1].lower() in IMAGE_EXTENSIONS


def check_resolution(resolution) -> int:
  """Returns `resolution` if it is a power of two >= 8, else raises ValueError."""
  if (isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer))
      or resolution < 8 or resolution & (resolution - 1)):
    raise ValueError(
        f'resolution must be a power of two >= 8 (8, 16, 32, 64, 128, ...); got {resolution!r}.')
  return int(resolution)


def parse_background(background: Background) -> Union[Colour, str]:
  """Normalises a background spec: (r, g, b), 'white', 'black', 'auto', '#rrggbb', 'r,g,b'."""
  values = background
  if isinstance(background, str):
    text = background.strip().lower()
    if text in ('auto', 'white', 'black'):
      return {'auto': 'auto', 'white': WHITE, 'black': (0, 0, 0)}[text]
    if re.fullmatch(r'#[0-9a-f]{6}', text):
      values = [int(text[i:i + 2], 16) for i in (1, 3, 5)]
    else:
      values = text.split(',')
  try:
    colour = tuple(int(v) for v in values)
  except (TypeError, ValueError):
    colour = ()
  if len(colour) != 3 or not all(0 <= v <= 255 for v in colour):
    raise ValueError(
        f'background must be an (r, g, b) colour with values in 0..255, "#rrggbb", "r,g,b", '
        f'"white", "black" or "auto"; got {background!r}.')
  return colour


def _to_8bit_gray(image: Image.Image) -> Image.Image:
  """16/32-bit integer or float grayscale -> 8-bit 'L', scaling rather than clipping."""
  a = np.asarray(image)
  if image.mode == 'F':
    a = np.nan_to_num(a.astype(np.float64))
    a = a * 255.0 if a.max(initial=0.0) <= 1.0 else a  # [0, 1] floats or already 0..255.
    a = np.clip(np.rint(a), 0, 255)
  elif image.mode == 'I' and a.max(initial=0) <= 255:
    a = np.clip(a, 0, 255)  # 32-bit container holding 8-bit values.
  else:
    a = np.clip(a.astype(np.int64), 0, 65535)
    a = (a * 255 + 32767) // 65535
  return Image.fromarray(a.astype(np.uint8), mode='L')


def to_rgb(image: Image.Image, matte: Colour = WHITE) -> Image.Image:
  """Any Pillow mode -> 'RGB'; transparent pixels are composited on `matte`."""
  if image.mode in ('I;16', 'I;16L', 'I;16B', 'I;16N', 'I', 'F'):
    image = _to_8bit_gray(image)
  elif image.mode == '1':
    image = image.convert('L')
  try:
    if image.has_transparency_data:
      rgba = image.convert('RGBA')
      canvas = Image.new('RGBA', rgba.size, tuple(matte) + (255,))
      return Image.alpha_composite(canvas, rgba).convert('RGB')
    return image.convert('RGB')
  except (ValueError, OSError) as e:
    raise ImageError('unsupported', f'cannot convert mode {image.mode!r} to RGB ({e})') from e


def check_header_size(image: Image.Image, max_pixels: Optional[int] = None,
                      max_aspect: Optional[float] = None) -> None:
  """Refuses, from the size in the file's header alone, a bomb or a strip (ImageError)."""
  w, h = image.size
  if max_pixels and w * h > max_pixels:
    raise ImageError('too_large', f'{w}x{h} = {w * h:,} pixels, over the limit of '
                     f'{max_pixels:,} (raise --max-pixels if the photo is genuine)')
  if max_aspect and w and h and max(w, h) > max_aspect * min(w, h):
    raise ImageError('bad_aspect', f'{w}x{h}: one side is {max(w, h) / min(w, h):.1f}x the '
                     f'other, over --max-aspect {max_aspect:g}')


def decode_image(data: bytes, matte: Colour = WHITE,
                 draft_size: Optional[int] = None, max_pixels: Optional[int] = None,
                 max_aspect: Optional[float] = None) -> Image.Image:
  """Encoded bytes -> upright 'RGB' PIL image (first frame), or ImageError.

  Args:
    data: the file's bytes.
    matte: colour that transparent pixels are composited on.
    draft_size: if set, JPEGs may be decoded at a reduced DCT scale, keeping both sides
      >= draft_size (only a speed-up; pass >= 3x the output size to keep full quality).
    max_pixels, max_aspect: limits checked on the header's size, before any pixel is decoded.
  """
  if not data:
    raise ImageError('empty', 'the file has 0 bytes')
  previous = ImageFile.LOAD_TRUNCATED_IMAGES
  ImageFile.LOAD_TRUNCATED_IMAGES = False  # A truncated file must fail, not be grey-filled.
  try:
    try:
      with warnings.catch_warnings():
        warnings.simplefilter('ignore', Image.DecompressionBombWarning)  # We check below.
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as e:
      raise ImageError('not_an_image', 'Pillow cannot identify the file as an image') from e
    except Image.DecompressionBombError as e:
      raise ImageError('too_large', str(e)) from e
    check_header_size(image, max_pixels, max_aspect)
    try:
      if draft_size and image.format == 'JPEG':
        image.draft(None, (draft_size, draft_size))
      with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)  # e.g. palette/EXIF chatter.
        image.load()  # First frame only: GIF/WebP/TIFF open at frame 0.
    except Image.DecompressionBombError as e:
      raise ImageError('too_large', str(e)) from e
    except Exception as e:  # pylint: disable=broad-except; Pillow plugins raise many types.
      message = str(e) or type(e).__name__
      if 'truncated' in message.lower() or isinstance(e, EOFError):
        raise ImageError('truncated', message) from e
      raise ImageError('corrupt', f'{image.format or "image"} data cannot be decoded: '
                       f'{message}') from e
  finally:
    ImageFile.LOAD_TRUNCATED_IMAGES = previous
  if image.width < 1 or image.height < 1:
    raise ImageError('corrupt', f'image has size {image.width}x{image.height}')
  try:
    image = ImageOps.exif_transpose(image)
  except Exception:  # pylint: disable=broad-except; broken EXIF: keep the stored orientation.
    pass
  return to_rgb(image, matte)


def _resize(image: Image.Image, size: Tuple[int, int], box=None) -> Image.Image:
  return image.resize(size, Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)


def border_colour(image: Image.Image) -> Colour:
  """Per-channel median of the outermost rows and columns of an RGB image."""
  a = np.asarray(image.convert('RGB'))
  edges = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]], axis=0)
  return tuple(int(v) for v in np.median(edges, axis=0))


@FIT.register('pad')
def _fit_pad(image: Image.Image, resolution: int, background) -> Image.Image:
  """Scale the long side to R, centre on an R x R canvas of the background colour."""
  w, h = image.size
  scale = resolution / max(w, h)
  size = (max(1, min(resolution, round(w * scale))), max(1, min(resolution, round(h * scale))))
  scaled = _resize(image, size)
  if background == 'auto':
    background = border_colour(scaled)
  canvas = Image.new('RGB', (resolution, resolution), tuple(background))
  canvas.paste(scaled, ((resolution - size[0]) // 2, (resolution - size[1]) // 2))
  return canvas


@FIT.register('crop')
def _fit_crop(image: Image.Image, resolution: int, background) -> Image.Image:
  """Centre square of side min(w, h), scaled to R x R (background unused)."""
  del background
  w, h = image.size
  side = min(w, h)
  left, top = (w - side) // 2, (h - side) // 2
  return _resize(image, (resolution, resolution), box=(left, top, left + side, top + side))


def fit_image(image: Image.Image, resolution: int, fit: str = 'pad',
              background: Background = WHITE) -> np.ndarray:
  """RGB PIL image -> np.uint8 [resolution, resolution, 3] (see module doc for the modes)."""
  background = parse_background(background)
  out = FIT.get(fit)(image.convert('RGB'), resolution, background)
  return np.asarray(out, dtype=np.uint8).reshape(resolution, resolution, 3)


def matte_for(background: Background) -> Colour:
  """The colour transparent pixels are composited on for a given background spec."""
  background = parse_background(background)
  return WHITE if background == 'auto' else background


def read_bytes(path: Union[str, os.PathLike]) -> bytes:
  """The file's bytes, or ImageError('unreadable') (missing, no permission, a directory)."""
  try:
    with open(path, 'rb') as f:
      return f.read()
  except OSError as e:
    raise ImageError('unreadable', f'{e.strerror or e}') from e


def load_image(path: Union[str, os.PathLike], resolution: int, fit: str = 'pad',
               background: Background = WHITE) -> np.ndarray:
  """Reads, validates and fits one image file -> np.uint8 [resolution, resolution, 3].

  Raises ImageError (with `.reason`) for empty, unreadable, non-image, corrupt, truncated
  or oversized files, and ValueError for a bad resolution / fit / background argument.
  """
  resolution = check_resolution(resolution)
  FIT.get(fit)  # Fail on a bad argument before touching the file.
  background = parse_background(background)
  data = read_bytes(path)
  try:
    image = decode_image(data, matte_for(background), draft_size=3 * resolution)
  except ImageError as e:
    if e.reason == 'not_an_image' and is_image_name(path):
      raise ImageError('corrupt', f'named like an image but {e.detail}') from e
    raise
  return fit_image(image, resolution, fit, background)
