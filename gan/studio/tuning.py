"""For each batch size, the fastest way to run the generator forward on this machine.

The DCGAN generator's upsampling layers have interchangeable implementations (gan/models/upconv.py:
same parameters, same outputs, different speed). The default is tuned for training (batch 64,
forward and backward); a studio request is forward only, often at batch 1 or 16, where another
one can be several times faster (2 shared CPU cores, default 64 px run: batch 1 took 149 ms with
the training choice and 20-32 ms with the others). So at start-up each candidate is compiled,
checked against the run's own generator (a candidate that draws different images is never used),
timed, and the fastest kept. A generator without `upsample_impl` is used as it is.
"""
import time
from typing import Callable, Dict, Optional, Tuple

import jax
import numpy as np

from gan import steps
from gan.models import upconv

CANDIDATES = ('default', 'gemm', 'toom2', 'conv_transpose')
TOLERANCE = 2e-3  # Largest difference from the run's own images, on [-1, 1] pixels.


def candidates(generator) -> Dict[str, object]:
  """name -> generator module with that upsampling implementation (the module itself first)."""
  out = {'run': generator}
  if hasattr(generator, 'upsample_impl'):
    for name in CANDIDATES:
      if name == 'default' or name in upconv.UPSAMPLERS.names():
        if name != getattr(generator, 'upsample_impl'):
          out[name] = generator.clone(upsample_impl=name)
  return out


def _best_time(fn, args, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return min(times)


def fastest(generator, variables, z, labels, repeats: int = 3
            ) -> Tuple[str, Callable, Dict[str, Optional[float]]]:
  """(name, sample_fn, {name: seconds, or None when its images differ}) for this batch shape.

  sample_fn(params, batch_stats, z, labels) as steps.make_sample_fn makes it.
  """
  args = (variables['params'], variables['batch_stats'], z, labels)
  fns = {name: steps.make_sample_fn(g) for name, g in candidates(generator).items()}
  reference = np.asarray(fns['run'](*args))
  timings, best = {}, ('run', None)
  for name, fn in fns.items():
    if name != 'run' and np.abs(np.asarray(fn(*args)) - reference).max() > TOLERANCE:
      timings[name] = None
      continue
    timings[name] = _best_time(fn, args, repeats)
    if best[1] is None or timings[name] < timings[best[0]]:
      best = (name, fn)
  return best[0], best[1], timings
