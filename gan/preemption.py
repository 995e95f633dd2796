"""SIGTERM-driven preemption: finish the current step, checkpoint, exit 0 (Cloud TPU sends SIGTERM
before preempting a VM). All processes of a multi-host run must stop at the same step."""
import signal
import threading

import jax
from absl import logging


class PreemptionWatcher:
  """`should_stop(step)` becomes True (on every process at the same step) once SIGTERM arrived."""

  def __init__(self):
    self._requested = threading.Event()
    self._previous = None
    self._multi_process = jax.process_count() > 1

  def __enter__(self):
    # Multi-host: JAX's coordination service already turns SIGTERM into a preemption notice that
    # all processes agree on (reached_preemption_sync_point). Single host: our own handler.
    if not self._multi_process and threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None

  def _handle(self, signum, frame):
    del frame
    logging.warning('Received signal %d: will checkpoint after the current step and exit.', signum)
    self._requested.set()

  def should_stop(self, step: int) -> bool:
    if self._multi_process:
      from jax.experimental import multihost_utils
      return multihost_utils.reached_preemption_sync_point(step)
    return self._requested.is_set()
