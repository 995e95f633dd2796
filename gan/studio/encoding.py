"""Images for the browser: uint8 arrays -> PNG bytes -> data: URLs (one JSON answer per request,
no second round trip per image)."""
import base64
import io
from typing import List

import numpy as np
from PIL import Image

from gan.control import output


def png_bytes(image: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  # Level 1: small images compress about as well, several times faster than the default 6.
  Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format='PNG', compress_level=1)
  return buffer.getvalue()


def data_url(image: np.ndarray) -> str:
  return 'data:image/png;base64,' + base64.b64encode(png_bytes(image)).decode('ascii')


def data_urls(images) -> List[str]:
  return [data_url(image) for image in images]


def to_uint8(image) -> np.ndarray:
  """One image in [-1, 1] (or uint8) -> uint8 [H, W, 3]."""
  return output.as_uint8(np.asarray(image)[None])[0]
