"""Sample grids: which (latent, label) pairs to draw, and how to tile and save images."""
import dataclasses
import io
from typing import List, Sequence

import numpy as np
from PIL import Image

from gan import rundir
from gan.data.vocab import Vocabulary


@dataclasses.dataclass
class GridSpec:
  name: str           # e.g. 'category_x_colour'
  rows: int
  cols: int
  labels: np.ndarray  # int32 [rows * cols, A]


def _pair_grid(vocab: Vocabulary, row_attr: str, col_attr: str) -> GridSpec:
  r, c = vocab.index_of(row_attr), vocab.index_of(col_attr)
  n_rows, n_cols = vocab.num_classes[r], vocab.num_classes[c]
  labels = np.tile(vocab.unspecified(), (n_rows * n_cols, 1))
  labels[:, r] = np.repeat(np.arange(n_rows), n_cols)
  labels[:, c] = np.tile(np.arange(n_cols), n_rows)
  return GridSpec(f'{vocab.names[r]}_x_{vocab.names[c]}', n_rows, n_cols, labels)


def grid_specs(vocab: Vocabulary, preferred: Sequence = (), num_latent_columns: int = 8
               ) -> List[GridSpec]:
  """One grid per attribute pair (main row attribute x every other attribute).

  With attributes (a, b, c): a x b and a x c (rows = values of a). One attribute: its values x
  `num_latent_columns` latents. No attributes: an 8x8 grid of latents.
  `preferred` names the row attribute first, e.g. ('category', 'colour'), or lists the grids
  as (rows, columns) pairs, e.g. (('category', 'colour'), ('colour', 'pattern')): exactly those.
  """
  if any(not isinstance(p, str) for p in preferred):
    return _grids_from_pairs(vocab, preferred, num_latent_columns)
  names = list(vocab.names)
  order = [n for n in preferred if n in names] + [n for n in names if n not in preferred]
  unspecified = vocab.unspecified()
  if not order:
    return [GridSpec('samples', 8, 8, np.zeros((64, 0), np.int32))]
  row_attr = order[0]
  r = vocab.index_of(row_attr)
  n_rows = vocab.num_classes[r]
  if len(order) == 1:
    labels = np.tile(unspecified, (n_rows * num_latent_columns, 1))
    labels[:, r] = np.repeat(np.arange(n_rows), num_latent_columns)
    return [GridSpec(row_attr, n_rows, num_latent_columns, labels)]
  return [_pair_grid(vocab, row_attr, col_attr) for col_attr in order[1:]]


def _grids_from_pairs(vocab: Vocabulary, pairs: Sequence, num_latent_columns: int
                      ) -> List[GridSpec]:
  if not vocab.names:  # An unconditional model: the latent grid.
    return grid_specs(vocab, (), num_latent_columns)
  specs = []
  for pair in pairs:
    if isinstance(pair, str) or len(pair) != 2 or not all(isinstance(a, str) for a in pair):
      raise ValueError(f'Sample grid {pair!r} must be a pair of attribute names (rows, columns), '
                       "e.g. ('category', 'material').")
    if vocab.resolve_attribute(pair[0]) == vocab.resolve_attribute(pair[1]):
      raise ValueError(f'Sample grid {tuple(pair)!r} needs two different attributes.')
    specs.append(_pair_grid(vocab, *pair))
  return specs


def to_uint8(images: np.ndarray) -> np.ndarray:
  """[-1, 1] floats -> uint8."""
  return np.clip(np.round((np.asarray(images) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def tile(images: np.ndarray, rows: int, cols: int, pad: int = 2, pad_value: int = 255) -> np.ndarray:
  """uint8 [rows*cols, H, W, C] -> one uint8 [rows*(H+pad)+pad, cols*(W+pad)+pad, C] grid."""
  n, h, w, c = images.shape
  if n != rows * cols:
    raise ValueError(f'{n} images cannot fill a {rows}x{cols} grid.')
  grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), pad_value, np.uint8)
  for i in range(n):
    y, x = divmod(i, cols)
    grid[pad + y * (h + pad): pad + y * (h + pad) + h, pad + x * (w + pad): pad + x * (w + pad) + w] = images[i]
  return grid


def save_png(image: np.ndarray, path: str) -> str:
  """Writes a uint8 image atomically (local paths and gs:// alike)."""
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format='PNG')
  return rundir.atomic_write(path, buffer.getvalue())
