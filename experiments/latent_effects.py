"""Does the latent do anything? What a user of a trained run sees when asking for variety.

  python experiments/latent_effects.py --workdir=workdirs/dcgan_products [--checkpoint latest]
      [--out-dir experiments/diversity] [--catalogue-data-dir DIR]

For a few full conditions (every attribute set; as `gan.sample --attr ... --num 24` would draw):
  - variety: mean pairwise RMS pixel distance (on [0, 1] pixels) of 24 samples of the condition,
    and, with the run's dataset at hand, of up to 24 catalogue images of that condition and the
    ratio of the two (1 = as varied as the catalogue);
  - edits: the mean absolute pixel change that SeFa's strongest direction makes at strength 3
    (`gan.sample --directions`), over the same samples;
  - interpolation: the mean absolute pixel change between the two ends of `--interpolate` and the
    largest change between neighbouring frames (a still picture has both near 0).
Writes, per condition, a PNG of its 24 samples, an 8-frame interpolation strip and the direction
strip into --out-dir, so a person can look, and prints a table (also as JSON with --json).
"""
import argparse
import json
import os
import sys

import numpy as np

from gan.control import generation, loading, output
from gan.evaluation import metrics

DEFAULT_CONDITIONS = (
    'category=mug,colour=teal,pattern=solid',
    'category=handbag,colour=red,pattern=striped',
    'category=sneaker,colour=navy,pattern=solid',
    'category=lamp,colour=gold,pattern=dotted',
    'category=t-shirt,colour=limegreen,pattern=checked',
)


def _unit(images):
  return (np.asarray(images, np.float64) + 1.0) / 2.0  # [-1, 1] -> [0, 1]


def catalogue_images(config, vocab, labels, count: int, data_dir=None):
  """Up to `count` training images with exactly these labels (uint8), or None without the data."""
  try:
    from gan.data import pipeline  # pylint: disable=import-outside-toplevel
    spec = pipeline.open_dataset(config.data.name, data_dir or config.data.data_dir,
                                 config.data.attributes)
  except Exception as e:  # pylint: disable=broad-except
    print(f'(catalogue comparison skipped: {e})', file=sys.stderr)
    return None
  found = []
  ds = pipeline.decoded_split(spec, config.data.train_split, int(config.data.resolution),
                              cache=False)
  for example in ds.as_numpy_iterator():
    if np.array_equal(example['labels'], labels):
      found.append(example['image'])
      if len(found) == count:
        break
  return np.stack(found) if len(found) >= 2 else None


def measure(run, condition: str, num: int, seed: int, out_dir, data_dir=None) -> dict:
  assignments = dict(part.split('=', 1) for part in condition.split(','))
  images, z, labels = generation.sample(run, assignments, num=num, seed=seed)
  row = {'condition': condition, 'pixel_spread': metrics.mean_pairwise_rms(_unit(images))}
  real = catalogue_images(run.config, run.vocabulary, labels[0], num, data_dir)
  if real is not None:
    row['catalogue_spread'] = metrics.mean_pairwise_rms(real)
    row['ratio'] = row['pixel_spread'] / max(row['catalogue_spread'], 1e-12)
  directions, _ = generation.directions(run, 1)
  edited = generation.generate(run, z + 3.0 * directions[0], labels)
  row['sefa_change_s3'] = float(np.mean(np.abs(_unit(edited) - _unit(images))))
  path = generation.interpolate(run, seed, seed + 1, frames=8, assignments=assignments)
  frames = _unit(path)
  row['interp_end_to_end'] = float(np.mean(np.abs(frames[-1] - frames[0])))
  row['interp_max_step'] = float(max(np.mean(np.abs(frames[i + 1] - frames[i]))
                                     for i in range(len(frames) - 1)))
  if out_dir:
    # 'category=mug,colour=teal,...' -> 'mug_teal_...': the values, whatever the attributes.
    slug = '_'.join(part.split('=', 1)[-1] for part in condition.split(','))
    cols = int(np.ceil(np.sqrt(num)))
    output.save_grid(images, os.path.join(out_dir, f'{slug}_samples.png'), cols=cols)
    output.save_grid(path, os.path.join(out_dir, f'{slug}_interpolation.png'), cols=len(path))
    strip = np.concatenate([images[:8], edited[:8]])
    output.save_grid(strip, os.path.join(out_dir, f'{slug}_sefa_s3.png'), cols=8)
  return row


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--workdir', required=True)
  parser.add_argument('--checkpoint', default='latest')
  parser.add_argument('--conditions', nargs='*', default=list(DEFAULT_CONDITIONS))
  parser.add_argument('--num', type=int, default=24)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--out-dir', default=None)
  parser.add_argument('--catalogue-data-dir', default=None,
                      help='TFDS data dir of the run\'s dataset (default: the run config\'s).')
  parser.add_argument('--json', default=None, help='Also write the rows to this JSON file.')
  args = parser.parse_args(argv)
  run = loading.load_run(args.workdir, loading.parse_checkpoint(args.checkpoint))
  rows = [measure(run, c, args.num, args.seed, args.out_dir, args.catalogue_data_dir)
          for c in args.conditions]
  print(f'{args.workdir} step {run.step} ({run.checkpoint})')
  keys = ['pixel_spread', 'catalogue_spread', 'ratio', 'sefa_change_s3', 'interp_end_to_end',
          'interp_max_step']
  print(f'{"condition":<46}' + ''.join(f'{k:>18}' for k in keys))
  for row in rows:
    print(f'{row["condition"]:<46}' + ''.join(
        f'{row[k]:>18.4f}' if k in row else f'{"-":>18}' for k in keys))
  means = {k: float(np.mean([r[k] for r in rows if k in r])) for k in keys
           if any(k in r for r in rows)}
  print(f'{"mean":<46}' + ''.join(f'{means[k]:>18.4f}' if k in means else f'{"-":>18}'
                                  for k in keys))
  if args.json:
    with open(args.json, 'w') as f:
      json.dump({'workdir': args.workdir, 'step': run.step, 'rows': rows, 'mean': means}, f,
                indent=2)
  return 0


if __name__ == '__main__':
  sys.exit(main())
