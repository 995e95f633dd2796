"""Microbenchmark of the DCGAN 64x64 up/down-sampling layers: forward + backward on XLA CPU.

For every layer shape of the classic DCGAN at batch 64 and every registered implementation in
gan.models.upconv.UPSAMPLERS / gan.models.downconv.DOWNSAMPLERS, times one jitted call computing
the output and the gradients w.r.t. the input and the kernel (after warm-up), interleaved with
PyTorch's ConvTranspose2d / Conv2d doing the same (when torch is importable) and with a 2048^3
float32 matmul (the roofline) in the same run, because the machine is shared and timings drift.

Prints per layer: ms (median and min over runs), useful GFLOP/s (3 x the direct conv FLOPs,
2*N*Hin*Win*Cin*Cout*16 for the transposed conv), % of the matmul roofline (above 100% means the
implementation does fewer FLOPs than the direct conv: Toom-Cook), and the PyTorch time and
speed-up (torch median / implementation median). Then the per-implementation totals and a step estimate: G layers once + D layers
three times (real and fake in the D step, fake in the G step), fwd+bwd each, for both stacks.

  python experiments/bench_layers.py [--impls fast,toom4,...] [--rounds 5] [--no-torch]
                                     [--malloc default|tuned|both]

--malloc tuned keeps freed memory in glibc's heap (mallopt M_MMAP_MAX=0, M_TRIM_THRESHOLD=2^31-1)
before JAX/torch allocate: on this VM every fresh multi-MB buffer otherwise page-faults
(a 38 MB elementwise op: 28 ms default vs 3 ms tuned). 'both' re-runs this script per setting.
"""
import argparse
import os
import subprocess
import sys
import time

import numpy as np

from gan import runtime

UP_SHAPES = [(4, 512, 256), (8, 256, 128), (16, 128, 64), (32, 64, 3)]  # (H_in, C_in, C_out)
DOWN_SHAPES = [(64, 3, 64), (32, 64, 128), (16, 128, 256), (8, 256, 512)]


def tune_malloc():
  if not runtime.tune_malloc():
    raise RuntimeError('mallopt failed')


def parse_args():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--batch', type=int, default=64)
  p.add_argument('--impls', default='all', help="comma-separated implementation names, or 'all'")
  p.add_argument('--rounds', type=int, default=5, help='interleaved rounds (each times every candidate twice)')
  p.add_argument('--no-torch', action='store_true')
  p.add_argument('--malloc', choices=('default', 'tuned', 'both'), default='tuned')
  p.add_argument('--layers', default='all', help="e.g. 'up8,down32' (kind + input size)")
  p.add_argument('--cpus', type=int, default=0,
                 help='pin to the first N CPUs (XLA sizes its thread pool by the affinity) and give '
                      'torch N threads; 0 = all. --cpus 1 compares single-core work, which is '
                      'less sensitive than 2-thread timings to other load on a shared machine')
  return p.parse_args()


def timed(fn, reps):
  out = []
  for _ in range(reps):
    t = time.perf_counter()
    fn()
    out.append(time.perf_counter() - t)
  return out


def interleave(fns, rounds, reps=2):
  """Runs every candidate `reps` times per round, rounds interleaved; returns name -> times."""
  for fn in fns.values():
    fn()  # warm-up (compiles)
  times = {k: [] for k in fns}
  for _ in range(rounds):
    for k, fn in fns.items():
      times[k] += timed(fn, reps)
  return times


def main():
  args = parse_args()
  if args.malloc == 'both':
    for mode in ('default', 'tuned'):
      argv, skip = [], False
      for a in sys.argv[1:]:  # drop '--malloc X' / '--malloc=X'
        if skip or a.startswith('--malloc'):
          skip = a == '--malloc'
          continue
        argv.append(a)
      cmd = [sys.executable, __file__, *argv, '--malloc', mode]
      print(f'\n===== malloc {mode} =====', flush=True)
      subprocess.run(cmd, check=True)
    return
  if args.malloc == 'tuned':
    tune_malloc()
  if args.cpus:
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.cpus])

  sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
  import jax
  import jax.numpy as jnp
  from gan.models import downconv, upconv

  try:
    import torch
  except ImportError:
    torch = None
  if args.no_torch:
    torch = None
  if torch is not None and args.cpus:
    torch.set_num_threads(args.cpus)

  n = args.batch
  key = jax.random.PRNGKey(0)
  a = jax.random.normal(key, (2048, 2048))
  matmul = jax.jit(lambda a: a @ a)
  roof_fn = lambda: matmul(a).block_until_ready()
  print(f'jax {jax.__version__}, devices {jax.devices()}, batch {n}, malloc {args.malloc}, '
        f'cpus {sorted(os.sched_getaffinity(0))}, load average {os.getloadavg()[0]:.1f}'
        + (f', torch {torch.__version__} threads {torch.get_num_threads()}' if torch else ', no torch'))

  layer_filter = None if args.layers == 'all' else set(args.layers.split(','))
  totals = {}
  for kind, shapes, registry, ref in (('up', UP_SHAPES, upconv.UPSAMPLERS, 'conv_transpose'),
                                      ('down', DOWN_SHAPES, downconv.DOWNSAMPLERS, 'conv')):
    names = registry.names() if args.impls == 'all' else [
        k for k in args.impls.split(',') if k in registry or k == 'ref']
    names = [ref if k == 'ref' else k for k in names]
    for h, cin, cout in shapes:
      if layer_filter and f'{kind}{h}' not in layer_filter:
        continue
      ho = 2 * h if kind == 'up' else h // 2
      spatial = h * h if kind == 'up' else ho * ho  # direct-conv positions x 16 taps
      flops = 3 * 2 * n * spatial * cin * cout * 16
      x = jax.random.normal(jax.random.PRNGKey(1), (n, h, h, cin))
      g = jax.random.normal(jax.random.PRNGKey(2), (n, ho, ho, cout))
      fns = {'matmul2048': roof_fn}
      for name in names:
        module = registry.get(name)(cout)
        params = module.init(jax.random.PRNGKey(3), x)
        loss = lambda p, x, g, m=module: jnp.vdot(m.apply(p, x), g)
        step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
        fns[name] = lambda step=step, params=params: jax.block_until_ready(step(params, x, g))
      if torch is not None:
        tm = (torch.nn.ConvTranspose2d if kind == 'up' else torch.nn.Conv2d)(cin, cout, 4, 2, 1, bias=False)
        tx = torch.randn(n, cin, h, h, requires_grad=True)
        tg = torch.randn(n, cout, ho, ho)

        def torch_fn(tm=tm, tx=tx, tg=tg):
          tx.grad = None
          tm.zero_grad()
          tm(tx).backward(tg)
        fns['torch'] = torch_fn
      times = interleave(fns, args.rounds)
      roof = 2 * 2048 ** 3 / min(times.pop('matmul2048'))
      t_torch = np.median(times['torch']) if 'torch' in times else None
      print(f'\n{kind} {h}->{ho}  {cin}->{cout}  ({flops / 1e9:.1f} GFLOP fwd+bwd; '
            f'matmul roofline {roof / 1e9:.0f} GFLOP/s)')
      print(f'  {"impl":16s} {"median ms":>10s} {"min ms":>8s} {"GFLOP/s":>8s} {"%roof":>6s} {"vs torch":>9s}')
      for name, ts in times.items():
        med, best = np.median(ts), min(ts)
        speed = f'{t_torch / med:8.2f}x' if t_torch else ''
        print(f'  {name:16s} {med * 1e3:10.1f} {best * 1e3:8.1f} {flops / med / 1e9:8.0f} '
              f'{100 * flops / med / roof:5.0f}% {speed}')
        totals.setdefault(name if name == 'torch' else f'{kind}:{name}', {})[f'{kind}{h}'] = med

  print(f'\nload average at the end {os.getloadavg()[0]:.1f}')
  print('\nTotals (median ms, sum over layers):')
  for name, per in totals.items():
    ups = sum(v for k, v in per.items() if k.startswith('up'))
    downs = sum(v for k, v in per.items() if k.startswith('down'))
    print(f'  {name:22s} up {ups * 1e3:8.1f}  down {downs * 1e3:8.1f}  ({len(per)} layers)')
  if 'torch' in totals:
    t = totals['torch']
    torch_step = sum(v for k, v in t.items() if k.startswith('up')) + 3 * sum(
        v for k, v in t.items() if k.startswith('down'))
    print(f'\nStep estimate, G layers + 3 x D layers (fwd+bwd): torch {torch_step * 1e3:.0f} ms')
    ups = {k[3:] for k in totals if k.startswith('up:')}
    downs = {k[5:] for k in totals if k.startswith('down:')}
    pairs = [(k, k) for k in sorted(ups & downs)]
    if 'conv_transpose' in ups and 'conv' in downs:
      pairs.insert(0, ('conv_transpose', 'conv'))
    for up_name, down_name in pairs:
      ours = sum(totals['up:' + up_name].values()) + 3 * sum(totals['down:' + down_name].values())
      print(f'  {up_name:>14s} + {down_name:<14s} {ours * 1e3:7.0f} ms  -> {torch_step / ours:.2f}x torch')

if __name__ == '__main__':
  main()
