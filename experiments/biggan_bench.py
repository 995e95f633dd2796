"""`experiments/benchmark.py --model biggan`: the BigGAN-class ResNet step against its PyTorch peer.

The peer is `../shared/bench/torch_resnet_ref.py` (--torch-ref): the same networks (BigGAN
ResNet-64, SN in G and D, CBN from a shared embedding + z chunks, projection D, hinge loss,
Adam(0, 0.999)), run with the same flags (--batch, --ch, --classes). It is loaded into this
process and timed in interleaved rounds with our step, as the DCGAN benchmark does, and also run
once in its own process as a user runs it. Ours is the same network: one attribute of --classes
values, no AC-GAN heads, no attribute dropout, latent 120 in 5 chunks, shared embedding 128.
Then the step of configs/biggan_products.py as trained. Prints images/s, the ratio, achieved
GFLOP/s (XLA cost analysis: the Toom-Cook layers' own, smaller FLOP count) against the matmul
roofline, and peak RSS (of this process: ours and the in-process peer together).
"""
import os
import re
import resource
import runpy
import subprocess
import sys

import jax

from configs import biggan_products, default

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PEER = os.path.join(os.path.dirname(ROOT), 'shared', 'bench', 'torch_resnet_ref.py')
SYNTHETIC_CLASSES = (8, 12, 4)  # synthetic_products: category, colour, pattern.


def peer_config(batch: int, ch: int):
  """Our config of the peer's network and training step."""
  c = default.get_config()
  c.batch_size = batch
  c.data.resolution = 64
  c.model.generator = c.model.discriminator = 'biggan'
  c.model.ch = ch
  c.model.latent_dim = 120
  c.model.embed_dim = 128
  c.model.aux_classifier = False
  c.aux_classifier_weight = 0.0
  c.attribute_dropout = 0.0
  c.loss = 'hinge'
  c.optim.g_b1 = c.optim.d_b1 = 0.0
  c.optim.g_b2 = c.optim.d_b2 = 0.999
  return c


def _peer_flags(args):
  return ['--batch', str(args.batch), '--ch', str(args.ch), '--classes', str(args.classes)]


def load_peer_step(path: str, args):
  """The peer script's step() with its networks built, loaded into this process (the script
  runs one step of its own while loading: it divides by its step count)."""
  argv = sys.argv
  sys.argv = [path] + _peer_flags(args) + ['--steps', '1', '--warmup', '0']
  try:
    peer = runpy.run_path(path, run_name='torch_resnet_ref')
  finally:
    sys.argv = argv
  return peer['step']


def peer_own_process(path: str, args) -> float:
  """The peer's images/s in its own process, as a user runs it (glibc's default allocator)."""
  cmd = [sys.executable, path] + _peer_flags(args) + ['--steps', str(max(args.steps // 2, 2))]
  out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
  return float(re.search(r'([0-9.]+) img/s', out).group(1))


def run(args, roofline_fn, make_train_step, time_interleaved, report):
  print(f'jax {jax.__version__} on {jax.devices()[0].platform} x{jax.local_device_count()}, '
        f'{os.cpu_count()} CPU cores, biggan: batch {args.batch}, ch {args.ch}, '
        f'{args.classes} classes')
  roofline = roofline_fn()
  print(f'roofline (float32 2048^3 matmul): {roofline:.1f} GFLOP/s')
  contestants, gflops, peer_own = {}, {}, None
  if args.skip_torch:
    print('PyTorch peer not timed (--skip-torch).')
  elif not os.path.exists(args.torch_ref):
    print(f'PyTorch peer not found at {args.torch_ref}: pass --torch-ref PATH, or --skip-torch.')
  else:
    try:
      contestants['torch'] = (load_peer_step(args.torch_ref, args), args.batch)
      peer_own = peer_own_process(args.torch_ref, args)
    except ImportError:
      print('torch not installed: pip install -e ".[bench]" to measure the PyTorch peer.')
  runs = {'peer_network': (peer_config(args.batch, args.ch), (args.classes,)),
          'default_run': (biggan_products.get_config(), SYNTHETIC_CLASSES)}
  for name, (config, num_classes) in runs.items():
    step, gflops[name] = make_train_step(config, num_classes, config.batch_size)
    contestants[name] = (step, config.batch_size)
  c = runs['default_run'][0]
  print(f'[default_run] biggan_products.py as trained: batch {c.batch_size}, ch {c.model.ch}, '
        f'{c.data.resolution} px')

  per_round = time_interleaved(contestants, args.steps, args.warmup, args.rounds)
  report(per_round, contestants, gflops, roofline, peer_own, compared=['peer_network'])
  print(f'peak_rss_mb: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}')
