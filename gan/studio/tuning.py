"""For each batch size, the fastest way to run the generator forward on this machine.

The DCGAN generator's upsampling layers have interchangeable implementations (gan/models/upconv.py:
same parameters, same outputs, different speed). The default is tuned for training (batch 64,
forward and backward); a studio request is forward only, often at batch 1 or 16, where another
one can be several times faster (2 shared CPU cores, default 64 px run: batch 1 took 149 ms with
the training choice and 20-32 ms with the others). So at start-up each candidate is compiled,
checked against the run's own generator (a candidate that draws different images is never used),
timed, and the fastest kept. A generator without `upsample_impl` is used as it is.

The choices are remembered in a small JSON file next to the compilation cache (`Choices`), keyed by
the model's shape and the machine, so a later start compiles only the chosen one (still checked).
"""
import json
import os
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


def _best_times(fns: Dict[str, Callable], args, repeats: int) -> Dict[str, float]:
  """Best of `repeats` per function, timed in turns (a burst of load from elsewhere on a shared
  machine then slows every candidate's round, not one candidate)."""
  best = {name: float('inf') for name in fns}
  for _ in range(repeats):
    for name, fn in fns.items():
      start = time.perf_counter()
      jax.block_until_ready(fn(*args))
      best[name] = min(best[name], time.perf_counter() - start)
  return best


def fastest(generator, variables, z, labels, repeats: int = 5
            ) -> Tuple[str, Callable, Dict[str, Optional[float]]]:
  """(name, sample_fn, {name: seconds, or None when its images differ}) for this batch shape.

  sample_fn(params, batch_stats, z, labels) as steps.make_sample_fn makes it.
  """
  args = (variables['params'], variables['batch_stats'], z, labels)
  fns = {name: steps.make_sample_fn(g) for name, g in candidates(generator).items()}
  reference = np.asarray(fns['run'](*args))
  same = {name: fn for name, fn in fns.items()  # Also compiles each one before it is timed.
          if name == 'run' or np.abs(np.asarray(fn(*args)) - reference).max() <= TOLERANCE}
  timings = _best_times(same, args, repeats)
  name = min(timings, key=timings.get)
  return name, same[name], {n: timings.get(n) for n in fns}


def checked(generator, variables, z, labels, name: str) -> Optional[Callable]:
  """The sample_fn of candidate `name` if it exists and draws the run's images, else None."""
  modules = candidates(generator)
  if name not in modules:
    return None
  args = (variables['params'], variables['batch_stats'], z, labels)
  fn = steps.make_sample_fn(modules[name])
  if name != 'run':
    reference = np.asarray(steps.make_sample_fn(generator)(*args))
    if np.abs(np.asarray(fn(*args)) - reference).max() > TOLERANCE:
      return None
  return fn


class Choices:
  """Remembered choices: {key: implementation name} in a JSON file (None: remember nothing)."""

  def __init__(self, path: Optional[str]):
    self.path = path
    self.data: Dict[str, str] = {}
    if path and os.path.exists(path):
      try:
        with open(path) as f:
          self.data = {str(k): str(v) for k, v in json.load(f).items()}
      except (OSError, ValueError, AttributeError):
        self.data = {}  # Unreadable: measure again and rewrite it.

  @staticmethod
  def key(config, batch: int) -> str:
    """What the choice depends on: the model, the batch size and the machine."""
    device = jax.devices()[0]
    return json.dumps([config.model.to_dict(), int(config.data.resolution), int(batch),
                       device.platform, device.device_kind, os.cpu_count()], sort_keys=True,
                      default=str)

  def get(self, key: str) -> Optional[str]:
    return self.data.get(key)

  def put(self, key: str, name: str) -> None:
    self.data[key] = name
    if self.path:
      temporary = f'{self.path}.{os.getpid()}.tmp'
      with open(temporary, 'w') as f:
        json.dump(self.data, f, indent=1)
      os.replace(temporary, self.path)
