"""Training-step speed of productgan's DCGAN 64x64 against the PyTorch peer and the roofline.

  python experiments/benchmark.py [--batch 64] [--steps 10] [--rounds 3] [--impl default|reference]
  python experiments/benchmark.py --model biggan [--batch 64] [--ch 32] [--classes 8]
                                  (the ResNet pair; see experiments/biggan_bench.py)

Prints, per model variant (unconditional first, then conditional as in dcgan_products.py), both
with the classic DCGAN widths (G and D 64) at --batch:
  images_per_second: X
achieved GFLOP/s (XLA cost analysis) and its fraction of a float32 matmul roofline measured in the
same run; the PyTorch reference's images/s in the same run and the ratio (when torch is installed:
pip install -e '.[bench]'), and the reference again in its own process with glibc's default
allocator settings, as a user runs it; then the step of dcgan_products.py exactly as the default
run trains it (its own batch size and widths, lighter than the classic DCGAN); the input
pipeline's images/s alone; peak RSS. The peer and our steps are timed in interleaved rounds
(--rounds), so a slow spell of the machine hits all of them alike; the ratio line also gives its
range over the rounds.
"""
import argparse
import os
import resource
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import dcgan_products  # noqa: E402
from experiments import biggan_bench  # noqa: E402
from gan import optim, parallel, runtime, state as state_lib, steps  # noqa: E402
from gan.models import build_models  # noqa: E402

NUM_CLASSES = (8, 12, 4)  # synthetic_products: category, colour, pattern.


def matmul_roofline_gflops(n: int = 2048, repeats: int = 10) -> float:
  a = jnp.ones((n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    f(a).block_until_ready()
    times.append(time.perf_counter() - t)
  return 2 * n ** 3 / np.median(times) / 1e9


def make_train_step(config, num_classes, batch: int):
  """(step, GFLOP per step from XLA's cost analysis): step() runs one training step and blocks."""
  g, d = build_models(config, num_classes, axis_name=parallel.AXIS)
  (g_tx, g_s), (d_tx, d_s) = optim.build_optimizers(config)
  state = parallel.replicated(state_lib.create_state(config, g, d, g_tx, d_tx, num_classes, 0))
  p_step = steps.pmap_train_step(
      steps.make_train_step(config, g, d, g_tx, d_tx, g_s, d_s, num_classes))
  rng = np.random.default_rng(0)
  n_dev = jax.local_device_count()
  r = d.resolution  # The model interface (gan/models/interface.py).
  images = rng.uniform(-1, 1, (n_dev, batch // n_dev, r, r, 3)).astype(np.float32)
  labels = np.stack([rng.integers(0, max(c, 1), (n_dev, batch // n_dev)) for c in num_classes],
                    -1).astype(np.int32) if num_classes else np.zeros((n_dev, batch // n_dev, 0),
                                                                        np.int32)
  b = {'image': images, 'labels': labels}
  compiled = p_step.lower(state, b).compile()  # Compiled once: timed and cost-analysed.
  try:
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    gflop = float(cost.get('flops', float('nan'))) / 1e9 * n_dev
  except Exception:  # cost analysis is best-effort across jax versions
    gflop = float('nan')
  holder = [state]

  def step():
    holder[0], _ = compiled(holder[0], b)
    jax.block_until_ready(holder[0])

  return step, gflop


def time_interleaved(contestants, n_steps: int, warmup: int, rounds: int):
  """{name: [images/s of each round]}: every contestant warms up, then the rounds take turns, so
  a slow spell of this shared VM (+-5-10% over minutes) hits every contestant alike."""
  for step, _ in contestants.values():
    for _ in range(warmup):
      step()
  per_round = {name: [] for name in contestants}
  for _ in range(rounds):
    for name, (step, batch) in contestants.items():
      times = []
      for _ in range(n_steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
      per_round[name].append(batch / np.median(times))
  return per_round


def pipeline_images_per_second(batch: int, n_batches: int = 50) -> float:
  from gan.data import pipeline
  config = dcgan_products.get_config()
  config.batch_size = batch
  data_dir = os.environ.get('TFDS_DATA_DIR')
  spec = pipeline.open_dataset('synthetic_products', data_dir)
  ds = pipeline.sharded_batches(pipeline.train_dataset(spec, config))
  for _ in range(5):  # Fills the cache and the shuffle buffer.
    next(ds)
  t = time.perf_counter()
  for _ in range(n_batches):
    next(ds)
  return n_batches * batch / (time.perf_counter() - t)


def torch_own_process(args) -> float:
  """The PyTorch peer in a fresh process (no tune_malloc there), as a user would run it."""
  code = ('from experiments.torch_dcgan_reference import torch_images_per_second as f; '
          f'print(f({args.batch}, {args.steps}, {args.warmup}))')
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  out = subprocess.run([sys.executable, '-c', code], cwd=root, capture_output=True, text=True,
                       check=True)
  return float(out.stdout.strip().splitlines()[-1])


def report(per_round, contestants, gflops, roofline, torch_own, compared):
  """Prints images/s, GFLOP/s against the roofline and, for `compared`, the ratio to the peer.

  Returns each contestant's median images/s (the peer's left out)."""
  results = {name: float(np.median(v)) for name, v in per_round.items()}
  torch_ips = results.pop('torch', None)
  if torch_ips:
    print(f'torch_reference_images_per_second: {torch_ips:.1f}')
    print(f'torch_reference_images_per_second_own_process: {torch_own:.1f}')
  for name, ips in results.items():
    batch = contestants[name][1]
    print(f'[{name}] images_per_second: {ips:.1f} (steps_per_second: {ips / batch:.2f})')
    achieved = gflops[name] * ips / batch
    if jax.default_backend() == 'cpu':
      print(f'[{name}] XLA GFLOP/step: {gflops[name]:.2f}, achieved {achieved:.1f} GFLOP/s = '
            f'{achieved / roofline:.2f} of roofline')
    else:  # Measured on an H200: 0.9 "GFLOP" for a step of ~160 GFLOP of convolutions.
      print(f'[{name}] GFLOP/s not reported on {jax.default_backend()}: XLA\'s cost analysis '
            'leaves out the convolutions it hands to cuDNN')
    if torch_ips and name in compared:
      rounds = [o / t for o, t in zip(per_round[name], per_round['torch'])]
      print(f'[{name}] ratio_vs_torch: {ips / torch_ips:.2f} (rounds {min(rounds):.2f}-'
            f'{max(rounds):.2f}; own process: {ips / torch_own:.2f})')
  return results


def main():
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--model', default='dcgan', choices=('dcgan', 'biggan'),
                 help='dcgan (against torch_dcgan_reference) or biggan (against --torch-ref)')
  p.add_argument('--ch', type=int, default=32, help='biggan: base width model.ch')
  p.add_argument('--classes', type=int, default=8, help='biggan: classes of its one attribute')
  p.add_argument('--torch-ref', default=biggan_bench.DEFAULT_PEER,
                 help='biggan: the PyTorch ResNet peer script (run with the same flags)')
  p.add_argument('--batch', type=int, default=64)
  p.add_argument('--steps', type=int, default=10, help='timed steps per contestant and round')
  p.add_argument('--rounds', type=int, default=3,
                 help='rounds in which the PyTorch peer and our steps take turns')
  p.add_argument('--warmup', type=int, default=10,
                 help='untimed steps first; the heap takes ~10 steps to settle (tune_malloc)')
  p.add_argument('--impl', default='default', help="'default' (fast layers) or 'reference' "
                 "(XLA's conv_transpose / conv)")
  p.add_argument('--skip-pipeline', action='store_true')
  p.add_argument('--skip-torch', action='store_true', help='do not time the PyTorch peer')
  p.add_argument('--no-tune-malloc', action='store_true', help='keep glibc malloc defaults')
  args = p.parse_args()
  if not args.no_tune_malloc:
    runtime.tune_malloc()
  if args.model == 'biggan':
    return biggan_bench.run(args, matmul_roofline_gflops, make_train_step, time_interleaved, report)

  print(f'jax {jax.__version__} on {jax.devices()[0].platform} x{jax.local_device_count()}, '
        f'{os.cpu_count()} CPU cores, batch {args.batch}, impl {args.impl}')
  roofline = matmul_roofline_gflops()
  print(f'roofline (float32 2048^3 matmul): {roofline:.1f} GFLOP/s')
  contestants, gflops, classic = {}, {}, {}
  torch_own = None
  if args.skip_torch:
    print('PyTorch reference not timed (--skip-torch).')
  else:
    try:
      from experiments.torch_dcgan_reference import make_torch_step
      contestants['torch'] = (make_torch_step(args.batch), args.batch)
      # The ratios use the peer timed here, under the same allocator settings as our step (they
      # speed it up too, ~7%). This is the peer as a user runs it: its own process, glibc defaults.
      torch_own = torch_own_process(args)
    except ImportError:
      print('torch not installed: pip install -e ".[bench]" to measure the PyTorch reference.')

  for name, conditional, is_classic in (('unconditional', False, True),
                                        ('conditional', True, True), ('default_run', True, False)):
    config = dcgan_products.get_config()
    if is_classic:  # The PyTorch reference's architecture and batch.
      config.batch_size = args.batch
      config.model.g_width = config.model.d_width = 64
    config.model.conditional = conditional
    if args.impl == 'reference':
      config.model.upsample_impl, config.model.downsample_impl = 'conv_transpose', 'conv'
    step, gflops[name] = make_train_step(config, NUM_CLASSES if conditional else (),
                                         config.batch_size)
    contestants[name] = (step, config.batch_size)
    classic[name] = is_classic
    if not is_classic:
      print(f'[{name}] dcgan_products.py as trained: batch {config.batch_size}, G width '
            f'{config.model.g_width}, D width {config.model.d_width}')

  per_round = time_interleaved(contestants, args.steps, args.warmup, args.rounds)
  results = report(per_round, contestants, gflops, roofline, torch_own,
                   compared=[n for n in classic if classic[n]])
  if not args.skip_pipeline:
    pipe = pipeline_images_per_second(args.batch)
    print(f'input_pipeline_images_per_second: {pipe:.1f} '
          f'({pipe / results["conditional"]:.1f}x what the conditional step consumes)')
  print(f'peak_rss_mb: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}')


if __name__ == '__main__':
  main()
