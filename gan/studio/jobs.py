"""Background jobs (photo inversions), bounded in number and in time.

One worker thread runs the jobs in arrival order. Bounds, each refused with a message that says
what to do: at most `max_waiting` jobs queued or running (JobsBusy), at most `max_kept` jobs
remembered (the oldest finished one is forgotten first), at most `timeout_s` seconds per job (the
work function calls `progress` between its steps; an overdue job stops there). Knows nothing about
models: the work is any function(payload, progress) -> result.
"""
import collections
import dataclasses
import logging
import queue
import secrets
import threading
import time
from typing import Any, Callable, Dict, Optional

QUEUED, RUNNING, DONE, FAILED = 'queued', 'running', 'done', 'failed'


class JobsBusy(RuntimeError):
  """Too many jobs waiting: the caller should try again later."""


class JobStopped(RuntimeError):
  """Raised inside a job's progress callback: the job ran out of time or the server is stopping."""


@dataclasses.dataclass
class Job:
  id: str
  payload: Any
  state: str = QUEUED
  progress: float = 0.0
  created: float = dataclasses.field(default_factory=time.monotonic)
  started: Optional[float] = None
  finished: Optional[float] = None
  error: Optional[str] = None
  result: Any = None

  @property
  def in_flight(self) -> bool:
    return self.state in (QUEUED, RUNNING)

  def elapsed(self) -> float:
    if self.started is None:
      return 0.0
    return (self.finished or time.monotonic()) - self.started


Work = Callable[[Any, Callable[[float], None]], Any]
# Turns an exception a job raised into the words shown to the user (None: an unexpected bug).
Explain = Callable[[BaseException], Optional[str]]


class JobRunner:
  """Runs `work(payload, progress)` for submitted payloads on one background thread."""

  def __init__(self, work: Work, max_waiting: int = 2, max_kept: int = 8,
               timeout_s: float = 300.0, explain: Explain = lambda e: None):
    if not 1 <= max_waiting <= max_kept:
      raise ValueError(f'Need 1 <= max_waiting <= max_kept; got {max_waiting}, {max_kept}.')
    self._work, self._explain = work, explain
    self.max_waiting, self.max_kept, self.timeout_s = max_waiting, max_kept, float(timeout_s)
    self._jobs: 'collections.OrderedDict[str, Job]' = collections.OrderedDict()
    self._lock = threading.Lock()
    self._queue: 'queue.Queue[Optional[Job]]' = queue.Queue()
    self._stopping = threading.Event()
    self._thread = threading.Thread(target=self._loop, name='studio-jobs', daemon=True)
    self._thread.start()

  def submit(self, payload) -> Job:
    with self._lock:
      if self._stopping.is_set():
        raise JobsBusy('The studio is shutting down.')
      waiting = sum(job.in_flight for job in self._jobs.values())
      if waiting >= self.max_waiting:
        raise JobsBusy(f'{waiting} photos are already being inverted (the limit is '
                       f'{self.max_waiting}); wait until one has finished, then upload again.')
      if len(self._jobs) >= self.max_kept:
        oldest = next(i for i, job in self._jobs.items() if not job.in_flight)
        del self._jobs[oldest]
      job = Job(secrets.token_hex(8), payload)
      self._jobs[job.id] = job
    self._queue.put(job)
    return job

  def get(self, job_id: str) -> Job:
    with self._lock:
      job = self._jobs.get(job_id)
    if job is None:
      raise KeyError(f'No job {job_id!r}: it never existed, or it was forgotten (the studio keeps '
                     f'the last {self.max_kept} jobs). Upload the photo again.')
    return job

  def jobs(self) -> Dict[str, Job]:
    with self._lock:
      return dict(self._jobs)

  def _loop(self):
    while True:
      job = self._queue.get()
      if job is None:
        return
      self._run(job)

  def _run(self, job: Job):
    job.state, job.started = RUNNING, time.monotonic()

    def progress(fraction: float):
      job.progress = min(max(float(fraction), 0.0), 1.0)
      if self._stopping.is_set():
        raise JobStopped('The studio is shutting down.')
      if job.elapsed() > self.timeout_s:
        raise JobStopped(f'The job took longer than its limit of {self.timeout_s:g} s and was '
                         'stopped (start the studio with a larger --job-timeout, or fewer '
                         '--invert-steps).')

    try:
      job.result = self._work(job.payload, progress)
      job.progress, job.state = 1.0, DONE
    except JobStopped as e:
      job.error, job.state = str(e), FAILED
    except Exception as e:  # pylint: disable=broad-except; a job must never kill the worker.
      words = self._explain(e)
      if words is None:
        logging.exception('studio job %s failed', job.id)
        words = f'The job failed unexpectedly ({type(e).__name__}: {e}); see the server log.'
      job.error, job.state = words, FAILED
    finally:
      job.finished = time.monotonic()
      job.payload = None  # The photo is not needed any more.

  def close(self, timeout_s: float = 10.0):
    """Stops taking jobs, stops the running one at its next step, ends the worker."""
    self._stopping.set()
    self._queue.put(None)
    self._thread.join(timeout_s)
