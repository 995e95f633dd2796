"""How the catalogue builder scales: images/s and peak memory from a few thousand photos to 50,000.

Generates N distinct JPEG product shots of mixed sizes (60x80 as in Kaggle's Fashion Product
Images, up to 1200x1600 camera photos; portrait and landscape) with a CSV of attributes, then
builds catalogues of the first n of them for each n in --sizes, each build in a fresh process,
and prints wall time, images/s and peak RSS (the build's own process, and its largest decoding
worker). Streaming means: seconds per image stay about constant, peak RSS stays about flat.

    python experiments/benchmark_catalog.py --sizes 5000,50000 [--workers N] [--root DIR]

The files are generated once into --root (default: a temporary folder, removed at the end unless
--keep) and reused by later runs with the same --root.
"""
import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent import futures

import numpy as np
from PIL import Image, ImageDraw

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = [((60, 80), 35), ((80, 60), 10), ((240, 320), 25), ((320, 240), 10), ((600, 800), 15),
         ((1200, 1600), 5)]  # (w, h), percent.
CATEGORIES = ['shirt', 'shoe', 'bag', 'watch', 'mug', 'lamp', 'cap', 'belt']
COLOURS = ['red', 'blue', 'green', 'black', 'white', 'navy', 'grey', 'pink', 'brown', 'teal',
           'olive', 'gold']
USAGES = ['casual'] * 60 + ['formal'] * 30 + ['sports'] * 9 + ['party']  # 'party' is rare.


def _size(i: int):
  rng = np.random.default_rng(i)
  sizes, weights = zip(*SIZES)
  return sizes[rng.choice(len(sizes), p=np.asarray(weights) / 100)]


def _make(i: int, folder: str):
  """One distinct photo: a coloured product shape at an index-dependent place on a backdrop."""
  rng = np.random.default_rng(1_000_003 + i)
  w, h = _size(i)
  backdrop = tuple(int(v) for v in rng.integers(200, 256, 3))
  image = Image.new('RGB', (w, h), backdrop)
  draw = ImageDraw.Draw(image)
  colour = tuple(int(v) for v in rng.integers(0, 200, 3))
  x0, y0 = rng.uniform(0.05, 0.35) * w, rng.uniform(0.05, 0.35) * h
  x1, y1 = rng.uniform(0.65, 0.95) * w, rng.uniform(0.65, 0.95) * h
  (draw.ellipse if i % 2 else draw.rectangle)([x0, y0, x1, y1], fill=colour)
  for _ in range(3):  # Detail marks so every file differs in its pixels.
    cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(2, max(3, w / 10))
    draw.ellipse([cx - r, cy - r, cx + r, cy + r],
                 fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
  rel = f'photos/{i // 1000:03d}/item {i:06d}.jpg'  # Spaces in names, 1,000 files a folder.
  path = os.path.join(folder, rel)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  image.save(path, 'JPEG', quality=90)
  return rel, CATEGORIES[i % 8], COLOURS[(i // 8) % 12], USAGES[int(rng.integers(100))]


def generate(root: str, n: int, workers: int) -> str:
  """Makes (or reuses) n photos under root and root/all.csv; returns the CSV path."""
  csv_path = os.path.join(root, 'all.csv')
  if os.path.exists(csv_path):
    with open(csv_path) as f:
      if sum(1 for _ in f) - 1 >= n:
        return csv_path
  start = time.time()
  with futures.ProcessPoolExecutor(workers) as pool:
    rows = list(pool.map(_make, range(n), [root] * n, chunksize=64))
  with open(csv_path, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['path', 'category', 'colour', 'usage'])
    writer.writerows(rows)
  print(f'generated {n:,} JPEGs in {time.time() - start:.0f} s '
        f'({sum(os.path.getsize(os.path.join(root, r[0])) for r in rows) / 2**20:.0f} MiB)',
        flush=True)
  return csv_path


def _subset(csv_path: str, n: int) -> str:
  out = os.path.join(os.path.dirname(csv_path), f'first_{n}.csv')
  with open(csv_path) as src, open(out, 'w') as dst:
    for k, line in enumerate(src):
      if k > n:
        break
      dst.write(line)
  return out


def _children_peak_mib(stop, out) -> None:
  """Samples the peak RSS (VmHWM) of this process's children until `stop` is set.

  getrusage(RUSAGE_CHILDREN) cannot tell: a fork that runs a command counts the parent's pages."""
  me = str(os.getpid())
  while not stop.wait(0.25):
    for pid in os.listdir('/proc'):
      try:
        with open(f'/proc/{pid}/status') as f:
          fields = dict(l.split(':', 1) for l in f if ':' in l)
      except (OSError, ValueError):
        continue
      if fields.get('PPid', '').strip() == me and 'VmHWM' in fields:
        out[pid] = max(out.get(pid, 0), int(fields['VmHWM'].split()[0]) / 1024)


def _run_one(args) -> None:
  """In a fresh process: one build, then its peak RSS as JSON on the last line."""
  import threading  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, REPO)
  stop, peaks = threading.Event(), {}
  sampler = threading.Thread(target=_children_peak_mib, args=(stop, peaks), daemon=True)
  sampler.start()
  from gan.data import catalog  # pylint: disable=g-import-not-at-top
  start = time.time()
  report = catalog.build_catalog(
      args.source, args.data_dir, csv=args.csv, name='bench', resolution=args.resolution,
      workers=args.workers, min_count=50, log=lambda m: print(m, file=sys.stderr, flush=True),
      progress=lambda m: print(m, file=sys.stderr, flush=True), progress_interval=15)
  seconds = time.time() - start
  stop.set()
  sampler.join()
  kib = lambda who: resource.getrusage(who).ru_maxrss
  print(json.dumps(dict(images=report.num_images, rows=report.num_files, seconds=seconds,
                        skipped=report.skipped_counts, rare=report.rare,
                        rss_mib=kib(resource.RUSAGE_SELF) / 1024,
                        worker_rss_mib=max(peaks.values(), default=0.0))))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--sizes', default='5000,50000',
                      help='catalogue sizes to build, comma-separated (default 5000,50000)')
  parser.add_argument('--workers', type=int, default=None,
                      help='decoding processes (default: every core)')
  parser.add_argument('--resolution', type=int, default=64)
  parser.add_argument('--root', help='where the photos go (default: a temporary folder)')
  parser.add_argument('--keep', action='store_true', help='keep the generated photos')
  parser.add_argument('--_one', action='store_true', help=argparse.SUPPRESS)
  parser.add_argument('--source', help=argparse.SUPPRESS)
  parser.add_argument('--csv', help=argparse.SUPPRESS)
  parser.add_argument('--data-dir', help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args._one:
    _run_one(args)
    return
  sizes = sorted(int(s) for s in args.sizes.split(','))
  workers = args.workers or len(os.sched_getaffinity(0))
  root = args.root or tempfile.mkdtemp(prefix='catalog_bench_')
  os.makedirs(root, exist_ok=True)
  print(f'{workers} workers, {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f}: '
        'on a shared machine the rates are a floor), resolution '
        f'{args.resolution}, photos in {root}', flush=True)
  try:
    csv_path = generate(root, sizes[-1], workers)
    results = []
    for n in sizes:
      out = os.path.join(root, f'tfds_{n}')
      shutil.rmtree(out, ignore_errors=True)
      proc = subprocess.run(
          [sys.executable, os.path.abspath(__file__), '--_one', '--source', root,
           '--csv', _subset(csv_path, n), '--data-dir', out, '--workers', str(workers),
           '--resolution', str(args.resolution)], capture_output=True, text=True, cwd=REPO)
      if proc.returncode:
        sys.exit(f'build of {n} failed:\n{proc.stderr[-3000:]}')
      r = json.loads(proc.stdout.strip().splitlines()[-1])
      r['n'] = n
      results.append(r)
      shutil.rmtree(out, ignore_errors=True)
      print(f'n={n:>6,}: {r["images"]:,} images in {r["seconds"]:.1f} s = '
            f'{r["images"] / r["seconds"]:.0f} images/s; peak RSS {r["rss_mib"]:.0f} MiB '
            f'(largest worker {r["worker_rss_mib"]:.0f} MiB); skipped {r["skipped"]}',
            flush=True)
    first, last = results[0], results[-1]
    if len(results) > 1:
      ratio = last['n'] / first['n']
      print(f'from {first["n"]:,} to {last["n"]:,} images ({ratio:.0f}x): time x'
            f'{last["seconds"] / first["seconds"]:.2f} (linear = x{ratio:.0f}), '
            f'seconds per image x{(last["seconds"] / last["n"]) / (first["seconds"] / first["n"]):.2f}'
            f'; peak RSS {first["rss_mib"]:.0f} -> {last["rss_mib"]:.0f} MiB '
            f'({(last["rss_mib"] - first["rss_mib"]) * 1024 / (last["n"] - first["n"]):.2f} KiB '
            f'per extra image), worker {first["worker_rss_mib"]:.0f} -> '
            f'{last["worker_rss_mib"]:.0f} MiB', flush=True)
      print(f'marginal rate (fixed start-up cost removed): '
            f'{(last["n"] - first["n"]) / (last["seconds"] - first["seconds"]):.0f} images/s',
            flush=True)
  finally:
    if not (args.keep or args.root):
      shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
  main()
