"""Uploaded photos: limits in bytes and pixels, then the same decoding as the catalogue's photos.

Checked in this order, each before any costly work: the declared size (Content-Length), the bytes
actually received (counted while reading, so a lying or absent header cannot get past), the image
header's width x height (Pillow reads it without decoding the pixels: a decompression bomb, a
small file that would expand to gigabytes, is refused before it expands), then the decoding
itself (gan/data/images.py: EXIF orientation, transparency, 16-bit, truncated files).
Nothing is written to disk: an upload lives in memory only.
"""
import dataclasses
import io
import warnings
from typing import AsyncIterator, Optional

import numpy as np
from PIL import Image

from gan.data import images as images_lib

MB = 1024 * 1024
FORMATS = 'JPEG, PNG, WebP, GIF, BMP or TIFF'


@dataclasses.dataclass(frozen=True)
class UploadLimits:
  max_bytes: int = 10 * MB
  max_pixels: int = 40_000_000    # 40 megapixels: any camera photo; a bomb is far bigger.

  def to_json(self) -> dict:
    return {'max_bytes': self.max_bytes, 'max_pixels': self.max_pixels, 'formats': FORMATS}


class UploadError(ValueError):
  """An upload refused; `status` is the HTTP status to answer with."""

  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status = status


def _size(n: int) -> str:
  return f'{n / MB:.1f} MB' if n >= MB else f'{n:,} bytes'


def too_large(received: int, limits: UploadLimits) -> UploadError:
  return UploadError(413, f'The photo is larger than the limit of {_size(limits.max_bytes)} '
                     f'(received {_size(received)} so far). Upload a smaller file, or start the '
                     'studio with a larger --max-upload-mb.')


def check_declared_size(content_length: Optional[str], limits: UploadLimits) -> None:
  """Refuses a body whose Content-Length is already over the limit (or is not a number)."""
  if content_length is None:
    return
  try:
    declared = int(content_length)
  except ValueError:
    raise UploadError(400, f'Content-Length must be a number of bytes; got {content_length!r}.')
  if declared > limits.max_bytes:
    raise too_large(declared, limits)


async def read_limited(chunks: AsyncIterator[bytes], limits: UploadLimits) -> bytes:
  """Reads a request body, stopping as soon as it passes the byte limit."""
  buffer, received = io.BytesIO(), 0
  async for chunk in chunks:
    received += len(chunk)
    if received > limits.max_bytes:
      raise too_large(received, limits)
    buffer.write(chunk)
  return buffer.getvalue()


def check_pixels(data: bytes, limits: UploadLimits) -> None:
  """Reads only the image header; refuses more than max_pixels before anything is decoded."""
  try:
    with warnings.catch_warnings():
      warnings.simplefilter('ignore')  # Pillow's DecompressionBombWarning: we decide below.
      with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
  except Image.DecompressionBombError as e:
    raise UploadError(413, f'The image has too many pixels to decode safely ({e}). The studio '
                      f'accepts at most {limits.max_pixels:,} pixels.') from e
  except Exception:  # pylint: disable=broad-except; not an image: decode_photo says so in words.
    return
  if width * height > limits.max_pixels:
    raise UploadError(413, f'The image is {width} x {height} = {width * height:,} pixels; the '
                      f'studio accepts at most {limits.max_pixels:,} pixels (a larger image could '
                      'be a decompression bomb). Resize it, or start the studio with a larger '
                      '--max-upload-pixels.')


def decode_photo(data: bytes, resolution: int, limits: UploadLimits) -> np.ndarray:
  """Upload bytes -> uint8 [resolution, resolution, 3] (padded to a square on white), or
  UploadError saying what was wrong."""
  if len(data) > limits.max_bytes:
    raise too_large(len(data), limits)
  if not data:
    raise UploadError(400, f'The upload is empty: send the photo file ({FORMATS}) as the '
                      'request body.')
  check_pixels(data, limits)
  try:
    image = images_lib.decode_image(data, draft_size=3 * resolution)
  except images_lib.ImageError as e:
    status = 415 if e.reason == 'not_an_image' else 400
    detail = images_lib.REASONS.get(e.reason, str(e))
    raise UploadError(status, f'This file cannot be used as a photo: {detail} ({e.detail or e}). '
                      f'Upload a {FORMATS} image.') from e
  return images_lib.fit_image(image, resolution)
