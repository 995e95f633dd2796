"""Writing control-tool results: grids, one PNG per image, animated GIFs (local paths and gs://)."""
import io
import math
import os
from typing import List, Optional, Sequence

import numpy as np
from PIL import Image

from gan import destinations, rundir, samples


def as_uint8(images) -> np.ndarray:
  """[-1, 1] floats or uint8 -> uint8 [n, H, W, 3]."""
  images = np.asarray(images)
  return images if images.dtype == np.uint8 else samples.to_uint8(images)


def grid(images, cols: Optional[int] = None, pad: int = 2) -> np.ndarray:
  """uint8 [n, H, W, 3] -> one grid image; `cols` defaults to a near-square layout.

  A last row that is not full is padded with blank (white) cells.
  """
  images = as_uint8(images)
  n = len(images)
  if n == 0:
    raise ValueError('No images to tile.')
  cols = int(cols) if cols else int(math.ceil(math.sqrt(n)))
  cols = min(cols, n)
  rows = int(math.ceil(n / cols))
  if rows * cols > n:
    blank = np.full((rows * cols - n,) + images.shape[1:], 255, np.uint8)
    images = np.concatenate([images, blank])
  return samples.tile(images, rows, cols, pad=pad)


def save_grid(images, path: str, cols: Optional[int] = None) -> str:
  tiled = grid(images, cols)
  with destinations.writing(path, 'the grid'):
    return samples.save_png(tiled, path)


def save_each(images, out_dir: str, names: Sequence[str]) -> List[str]:
  """One PNG per image: out_dir/<name>.png."""
  images = as_uint8(images)
  if len(names) != len(images):
    raise ValueError(f'{len(images)} images but {len(names)} names.')
  with destinations.writing(out_dir, 'the images into'):
    return [samples.save_png(image, os.path.join(out_dir, f'{name}.png'))
            for image, name in zip(images, names)]


def encode_gif(images, duration_ms: int = 120, boomerang: bool = False) -> bytes:
  """uint8 [frames, H, W, 3] -> animated GIF bytes (loops forever).

  boomerang: play forwards then backwards (without repeating the end frames), for a seamless loop.
  """
  frames = [Image.fromarray(im) for im in as_uint8(images)]
  if boomerang and len(frames) > 2:
    frames = frames + frames[-2:0:-1]
  buffer = io.BytesIO()
  frames[0].save(buffer, format='GIF', save_all=True, append_images=frames[1:],
                 duration=int(duration_ms), loop=0, optimize=False, disposal=1)
  return buffer.getvalue()


def save_gif(images, path: str, duration_ms: int = 120, boomerang: bool = False) -> str:
  data = encode_gif(images, duration_ms, boomerang)
  with destinations.writing(path, 'the GIF'):
    rundir.atomic_write(path, data)
  return path
