"""Saves a preview grid of the synthetic_products renderer.

Rows 0..C-1: one row per category, one column per colour, solid pattern (the material cycles).
Then one row per pattern (category and material cycle along the row), so patterns are easy to
inspect. Then the material block: two rows per material (fabric, plastic, metal, leather), the
first solid, the second cycling the patterns, with the category cycling along both.
With --no-material the image is synthetic_products 1.0.0's (no material block).

  python experiments/preview_synthetic_products.py [--out PATH] [--size 64] [--seed 0]
"""
import argparse
import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from gan.data import render  # pylint: disable=g-import-not-at-top


def preview_rows(material: bool = True):
  """Rows of (category, colour, pattern, material or None) cells."""
  n_cols, n_cat, n_mat = len(render.COLOURS), len(render.CATEGORIES), len(render.MATERIALS)
  mat = (lambda i: i % n_mat) if material else (lambda i: None)
  rows = []
  for cat in range(n_cat):
    rows.append([(cat, col, 0, mat(col + cat)) for col in range(n_cols)])
  for pat in range(len(render.PATTERNS)):
    rows.append([(col % n_cat, col, pat, mat(col)) for col in range(n_cols)])
  if material:
    for m in range(n_mat):
      rows.append([((col + m) % n_cat, col, 0, m) for col in range(n_cols)])
      rows.append([((col + m + 3) % n_cat, col, 1 + col % 3, m) for col in range(n_cols)])
  return rows


def preview_grid(size: int = 64, seed: int = 0, pad: int = 2, material: bool = True) -> np.ndarray:
  rows = preview_rows(material)
  n_cols = len(rows[0])
  cell = size + pad
  grid = np.full((len(rows) * cell + pad, n_cols * cell + pad, 3), 255, np.uint8)
  for r, row in enumerate(rows):
    for c, (cat, col, pat, mat) in enumerate(row):
      rng = np.random.default_rng([seed, r, c])
      img = render.render_product(cat, col, pat, rng, size, mat)
      grid[pad + r * cell:pad + r * cell + size, pad + c * cell:pad + c * cell + size] = img
  return grid


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__),
                                                    'synthetic_products_preview.png'))
  parser.add_argument('--size', type=int, default=64)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--zoom', type=int, default=2, help='nearest-neighbour upscaling')
  parser.add_argument('--no-material', dest='material', action='store_false',
                      help='render synthetic_products 1.0.0 (one satin surface, no material rows)')
  args = parser.parse_args()
  grid = preview_grid(args.size, args.seed, material=args.material)
  image = Image.fromarray(grid)
  if args.zoom > 1:
    image = image.resize((image.width * args.zoom, image.height * args.zoom), Image.NEAREST)
  image.save(args.out)
  print(f'wrote {args.out} ({image.width}x{image.height})')


if __name__ == '__main__':
  main()
