"""Steer a trained generator from the command line.

  python -m gan.sample --workdir=DIR --attr category=handbag --attr colour=red --out bags.png
  python -m gan.sample --workdir=DIR --prompt "crimson striped handbag" --out bags.png
  python -m gan.sample --workdir=DIR --attr category=sneaker --sweep colour --num 2 --out sweep.png
  python -m gan.sample --workdir=DIR --interpolate 3,7 --frames 12 --out path.png   (+ path.gif)
  python -m gan.sample --workdir=DIR --directions 6 --out directions.png
  python -m gan.sample --workdir=DIR --direction 0 --strength 3 --num 8 --out edit.png

Every option: the README's "Steering a trained model" section.
"""
import os
import sys
import time
from typing import Optional, Sequence

import numpy as np

from gan import destinations, rundir
from gan.control import cli, output, postprocess
from gan.control.latents import check_truncation

DESCRIPTION = __doc__


def build_parser():
  from gan.control.generation import ANY_MODES
  parser = cli.make_parser('python -m gan.sample', DESCRIPTION)
  parser.add_argument('--prompt', metavar='TEXT',
                      help='Attributes in words, e.g. "crimson striped handbag" (values, plurals, '
                      'synonyms, colour names mapped to the nearest catalogue colour, typos). '
                      '--attr flags override it; words it cannot place are named on stderr.')
  parser.add_argument('--num', type=int, default=None,
                      help='Images (default 16), or latents = rows for --sweep (default 1).')
  parser.add_argument('--truncation', type=float, default=0.0,
                      help='Truncation threshold: latent components are drawn from N(0,1) '
                      'restricted to [-t, t] (resampled). Lower = more typical, less diverse. '
                      '0 = off (default).')
  parser.add_argument('--any', dest='any_mode', default='auto', choices=ANY_MODES,
                      help='How attributes left out become "any": catalogue (drawn per image '
                      'as the training catalogue has them, given the ones you asked for), the '
                      'model\'s "unspecified" label, a uniformly random value, or auto (catalogue '
                      'when the run saved its label distribution, else unspecified if it trained '
                      'with attribute dropout, else random).')
  mode = parser.add_mutually_exclusive_group()
  mode.add_argument('--sweep', metavar='ATTRIBUTE',
                    help='Keep each latent fixed and show it with every value of ATTRIBUTE.')
  mode.add_argument('--interpolate', metavar='SEED_A,SEED_B',
                    help='Slerp between the first latents of two seeds: a strip PNG and a GIF.')
  mode.add_argument('--directions', type=int, metavar='K',
                    help='Preview the K strongest SeFa edit directions, one strip per direction.')
  mode.add_argument('--direction', type=int, metavar='K',
                    help='Apply SeFa direction K (0 = strongest) with --strength to the samples.')
  parser.add_argument('--frames', type=int, default=None,
                      help='Frames of --interpolate (default 8) / images per --directions strip '
                      '(default 7).')
  parser.add_argument('--strength', type=float, default=3.0,
                      help='Edit strength in latent standard deviations: --direction moves by it, '
                      '--directions strips span [-strength, +strength]. Default 3.')
  parser.add_argument('--gif', help='GIF path for --interpolate (default: --out with .gif).')
  parser.add_argument('--frame-ms', type=int, default=120, help='GIF frame duration (ms).')
  parser.add_argument('--timing', action='store_true',
                      help='Print how long generating the images takes after compilation.')
  return parser


def _parse_pair(text: str):
  try:
    a, b = (int(s) for s in text.split(','))
  except ValueError:
    raise cli.UsageError(f'--interpolate takes two seeds as SEED_A,SEED_B (e.g. 3,7); '
                         f'got {text!r}.')
  return a, b


def _write(args, images, names, cols=None):
  """Post-processes and writes images [n, H, W, 3] ([-1, 1]) as a grid and/or one file each."""
  images = postprocess.apply(output.as_uint8(images), args.postprocess)
  if args.out:
    print(f'wrote {output.save_grid(images, args.out, args.cols or cols)}')
  if args.out_dir:
    paths = output.save_each(images, args.out_dir, names)
    print(f'wrote {len(paths)} images to {args.out_dir}')
  return images


def _report_attributes(args, vocab, names, labels, requested, shown: int = 16):
  """Says which values the attributes left out got (per image); with --out-dir also as JSON."""
  free = [n for n in vocab.names if n not in requested]
  if not free:
    return
  decoded = {name: vocab.decode(row) for name, row in zip(names, labels)}
  for name in names[:shown]:
    print(f'{name}: ' + ' '.join(f'{a}={decoded[name][a]}' for a in free))
  if len(names) > shown:
    print(f'... ({len(names) - shown} more)')
  if args.out_dir:
    path = os.path.join(args.out_dir, 'attributes.json')
    with destinations.writing(path, 'the attributes'):
      rundir.write_json(path, decoded, indent=1)
    print(f'wrote {path}')


def _valid_values(vocab, shown: int = 12) -> str:
  return '; '.join(f'{name}: ' + ', '.join(values[:shown]) +
                   (f' ... ({len(values) - shown} more)' if len(values) > shown else '')
                   for name, values in vocab.attributes)


def _read_prompt(text: str, vocab, explicit):
  """--prompt TEXT -> assignments (gan.control.prompt), explicit --attr ones winning."""
  from gan.control import prompt
  if not vocab.names:
    raise cli.UsageError('This model is not conditioned on attributes, so --prompt cannot be used.')
  parsed = prompt.parse(text, vocab)
  if not parsed.assignments:
    words = f' (not understood: {", ".join(parsed.unknown)})' if parsed.unknown else ''
    raise cli.UsageError(f'--prompt {text!r} names no attribute value of this model{words}. '
                         f'Valid values: {_valid_values(vocab)}.')
  for note in parsed.notes:
    print(f'prompt: {note}')
  for name in set(parsed.assignments) & set(explicit):
    print(f'prompt: --attr {name}={explicit[name]} overrides {parsed.assignments[name]}')
  if parsed.unknown:
    print(f'gan.sample: warning: --prompt words not understood and ignored: '
          f'{", ".join(parsed.unknown)}. Valid values: {_valid_values(vocab)}.', file=sys.stderr)
  attrs = {**parsed.assignments, **explicit}
  print('prompt: ' + ' '.join(f'{name}={value}' for name, value in attrs.items()))
  return attrs


def _slug(text: str) -> str:
  return ''.join(c if c.isalnum() or c in '-_' else '-' for c in text)


def run_sample(args) -> int:
  from gan.control import generation, loading
  truncation = check_truncation(args.truncation)
  if args.frames is not None and args.frames < 2:
    raise cli.UsageError(f'--frames must be at least 2, got {args.frames}.')
  pair = _parse_pair(args.interpolate) if args.interpolate else None
  run = loading.load_run(args.workdir, args.checkpoint)
  print(f'{args.workdir}: {run.checkpoint} checkpoint, step {run.step}')
  attrs = generation.parse_attributes(run, args.attr)
  if args.prompt is not None:
    attrs = _read_prompt(args.prompt, run.vocabulary, attrs)
  common = dict(truncation=truncation, any_mode=args.any_mode)
  start = time.perf_counter()

  if args.sweep:
    num = args.num or 1
    images, values = generation.sweep(run, args.sweep, attrs, num, args.seed, **common)
    name = run.vocabulary.resolve_attribute(args.sweep)
    print(f'{name}: ' + ', '.join(values))
    _write(args, images.reshape((-1,) + images.shape[2:]),
           [f'{r:03d}_{_slug(name)}_{_slug(v)}' for r in range(num) for v in values], len(values))
  elif pair:
    frames = args.frames or 8
    images = generation.interpolate(run, pair[0], pair[1], frames, attrs, **common)
    processed = _write(args, images, cli.names_for('frame_', frames), frames)
    gif = args.gif or (os.path.splitext(args.out)[0] + '.gif' if args.out else
                       os.path.join(args.out_dir, 'interpolation.gif'))
    print(f'wrote {output.save_gif(processed, gif, args.frame_ms)} ({frames} frames)')
  elif args.directions is not None:
    frames = args.frames or 7
    strengths = np.linspace(-args.strength, args.strength, frames)
    images, eigenvalues = generation.direction_previews(run, args.directions, strengths, args.seed,
                                                        attrs, **common)
    total = float(np.sum(generation.directions(run)[1]))
    print('direction  eigenvalue  share   (strips: strength ' +
          ', '.join(f'{s:+.1f}' for s in strengths) + ')')
    for k, value in enumerate(eigenvalues):
      print(f'{k:9d}  {value:10.4g}  {value / total:6.1%}')
    _write(args, images.reshape((-1,) + images.shape[2:]),
           [f'direction_{k:02d}_{j:02d}' for k in range(len(images)) for j in range(frames)],
           frames)
  elif args.direction is not None:
    num = args.num or 16
    edited, original = generation.edit(run, args.direction, args.strength, attrs, num, args.seed,
                                       **common)
    print(f'direction {args.direction} at strength {args.strength:+g}' +
          (' (grid: top row original, bottom row edited)' if args.out else ''))
    both = output.as_uint8(np.concatenate([original, edited]))
    images = postprocess.apply(both, args.postprocess)
    if args.out:
      print(f'wrote {output.save_grid(images, args.out, args.cols or num)}')
    if args.out_dir:
      output.save_each(images[num:], args.out_dir, cli.names_for('edited_', num))
      print(f'wrote {num} images to {args.out_dir}')
  else:
    num = args.num or 16
    images, _, labels = generation.sample(run, attrs, num, args.seed, **common)
    names = cli.names_for('sample_', num)
    _write(args, images, names)
    _report_attributes(args, run.vocabulary, names, labels, attrs)

  elapsed = time.perf_counter() - start
  if args.timing:
    t = generation.time_sampling(run, args.num or 64)
    print(f'timing: {t["num_images"]} images in {t["seconds"] * 1000:.1f} ms after compilation '
          f'({t["images_per_second"]:.0f} images/s; the whole command took {elapsed:.2f} s '
          'including loading, compilation and writing)')
  return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Runs the command line (argv without the program name); returns the exit code."""
  return cli.run_main(run_sample, build_parser(), argv)


if __name__ == '__main__':
  sys.exit(main())
