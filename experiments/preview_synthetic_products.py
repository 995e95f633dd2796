"""Saves a preview grid of the synthetic_products renderer.

Rows 0..C-1: one row per category, one column per colour, solid pattern.
Then one row per pattern (the category cycles along the row), so patterns are easy to inspect.

  python experiments/preview_synthetic_products.py [--out PATH] [--size 64] [--seed 0]
"""
import argparse
import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from gan.data import render  # pylint: disable=g-import-not-at-top


def preview_grid(size: int = 64, seed: int = 0, pad: int = 2) -> np.ndarray:
  n_cols = len(render.COLOURS)
  rows = []
  for cat in range(len(render.CATEGORIES)):
    rows.append([(cat, col, 0) for col in range(n_cols)])
  for pat in range(len(render.PATTERNS)):
    rows.append([(col % len(render.CATEGORIES), col, pat) for col in range(n_cols)])
  cell = size + pad
  grid = np.full((len(rows) * cell + pad, n_cols * cell + pad, 3), 255, np.uint8)
  for r, row in enumerate(rows):
    for c, (cat, col, pat) in enumerate(row):
      rng = np.random.default_rng([seed, r, c])
      img = render.render_product(cat, col, pat, rng, size)
      grid[pad + r * cell:pad + r * cell + size, pad + c * cell:pad + c * cell + size] = img
  return grid


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__),
                                                    'synthetic_products_preview.png'))
  parser.add_argument('--size', type=int, default=64)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--zoom', type=int, default=2, help='nearest-neighbour upscaling')
  args = parser.parse_args()
  grid = preview_grid(args.size, args.seed)
  image = Image.fromarray(grid)
  if args.zoom > 1:
    image = image.resize((image.width * args.zoom, image.height * args.zoom), Image.NEAREST)
  image.save(args.out)
  print(f'wrote {args.out} ({image.width}x{image.height})')


if __name__ == '__main__':
  main()
