"""Variants of a real photo: invert it into the generator, then render it with other attributes.

  python -m gan.invert --workdir=DIR --image photo.jpg --attr colour=navy --out variants.png
  python -m gan.invert --workdir=DIR --image mug.png --known category=mug --sweep colour \\
      --out mugs.png
  python -m gan.invert --workdir=DIR --image bag.jpg --num 8 --jitter 0.4 --out-dir bag_variants/

The output grid shows: the photo (as the model sees it), the reconstruction, then the variants
(--attr, --sweep, --num). The reconstruction error (MSE, PSNR) and the attributes found are printed.
How the inversion works: gan/control/inversion.py.
"""
import sys
from typing import Optional, Sequence

import numpy as np

from gan import destinations, rundir
from gan.control import cli, inversion, output, postprocess

DESCRIPTION = __doc__


def build_parser():
  defaults = inversion.InversionConfig()
  parser = cli.make_parser('python -m gan.invert', DESCRIPTION)
  parser.add_argument('--image', required=True, help='The photo (JPEG, PNG, WebP, ...).')
  parser.add_argument('--known', action='append', default=[], metavar='NAME=VALUE',
                      help='An attribute of the photo you know; held fixed while inverting. '
                      'Others are found by the inversion.')
  parser.add_argument('--sweep', metavar='ATTRIBUTE',
                      help='Also render the product with every value of ATTRIBUTE.')
  parser.add_argument('--num', type=int, default=0,
                      help='Also render NUM near variants (latent + jitter * noise). Default 0.')
  parser.add_argument('--jitter', type=float, default=0.5,
                      help='Latent noise of the --num variants, in latent std units (default 0.5).')
  parser.add_argument('--steps', type=int, default=defaults.steps, help='Adam steps.')
  parser.add_argument('--restarts', type=int, default=defaults.restarts,
                      help='Random starts optimised together as one batch; the best one wins.')
  parser.add_argument('--lr', type=float, default=defaults.learning_rate)
  parser.add_argument('--pixel-weight', type=float, default=defaults.pixel_weight)
  parser.add_argument('--feature-weight', type=float, default=defaults.feature_weight,
                      help='Weight of the discriminator-feature loss (0 = pixels only).')
  parser.add_argument('--fit', default='pad', choices=('pad', 'crop'),
                      help='Make the photo square by padding (keeps the whole product) or by '
                      'cropping.')
  parser.add_argument('--background', default='white',
                      help='Padding / transparency colour: white, black, auto, #rrggbb or r,g,b.')
  parser.add_argument('--save-latent', metavar='FILE.npz',
                      help='Save the found latent and attribute labels (numpy .npz).')
  return parser


def run_invert(args) -> int:
  from gan.control import loading
  from gan.data import images as images_lib
  from gan.data.vocab import Vocabulary
  config = inversion.InversionConfig(
      steps=args.steps, restarts=args.restarts, learning_rate=args.lr,
      pixel_weight=args.pixel_weight, feature_weight=args.feature_weight, seed=args.seed)
  config.validate()
  if args.num < 0:
    raise cli.UsageError(f'--num must be >= 0, got {args.num}.')
  # Before the (slower) checkpoint restore: a bad photo or attribute fails fast.
  run_config = rundir.load_config(args.workdir)
  vocab = Vocabulary.load(args.workdir) if run_config.model.conditional else \
      Vocabulary.from_dict({})
  if (args.attr or args.known or args.sweep) and not vocab.names:
    raise ValueError('This model is not conditioned on attributes: --attr/--known/--sweep do not '
                     'apply.')
  attrs, known = vocab.parse(args.attr), vocab.parse(args.known)
  sweep_name = vocab.resolve_attribute(args.sweep) if args.sweep else None
  try:
    photo = images_lib.load_image(args.image, int(run_config.data.resolution), fit=args.fit,
                                  background=args.background)
  except images_lib.ImageError as e:
    raise ValueError(f'cannot use {args.image} as the photo: {e}') from e
  run = loading.load_run(args.workdir, args.checkpoint)
  print(f'{args.workdir}: {run.checkpoint} checkpoint, step {run.step}')

  result = inversion.invert(run, photo, known, config)
  found = ' '.join(f'{k}={v}' for k, v in result.attributes.items())
  print(f'reconstruction: MSE {result.mse:.5f}, PSNR {result.psnr:.2f} dB (a random latent: '
        f'{result.initial_psnr:.2f} dB){"; attributes: " + found if found else ""}')

  images = [inversion.to_float(photo), result.reconstruction]
  names = ['photo', 'reconstruction']
  if attrs:
    images.append(inversion.render_variants(run, result, attrs))
    names.append('variant_' + '_'.join(f'{k}-{v}' for k, v in attrs.items()))
  if sweep_name:
    swept, values = inversion.sweep_variants(run, result, sweep_name, attrs)
    images.extend(swept)
    names.extend(f'{sweep_name}_{v}' for v in values)
  if args.num:
    images.extend(inversion.jitter_variants(run, result, args.num, args.jitter, args.seed, attrs))
    names.extend(cli.names_for('jitter_', args.num))
  names = [''.join(c if c.isalnum() or c in '-_' else '-' for c in n) for n in names]

  processed = postprocess.apply(output.as_uint8(np.stack(images)), args.postprocess)
  if args.out:
    print(f'wrote {output.save_grid(processed, args.out, args.cols or min(len(images), 8))}')
  if args.out_dir:
    output.save_each(processed, args.out_dir, names)
    print(f'wrote {len(names)} images to {args.out_dir}')
  if args.save_latent:
    with destinations.writing(args.save_latent, 'the latent'):
      np.savez(args.save_latent, z=result.z, labels=result.labels, psnr=result.psnr)
    print(f'wrote {args.save_latent}')
  return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Runs the command line (argv without the program name); returns the exit code."""
  return cli.run_main(run_invert, build_parser(), argv)


if __name__ == '__main__':
  sys.exit(main())
