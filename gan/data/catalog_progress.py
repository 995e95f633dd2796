"""A plain-text progress bar with rate and ETA, for long catalogue builds (no tqdm needed).

    decoding [########............]  41% 20,500/50,000  412/s  ETA 1m12s
"""
import time
from typing import Callable, Optional

WIDTH = 20


def duration(seconds: float) -> str:
  """1h02m, 3m07s, 42s."""
  seconds = max(0, int(round(seconds)))
  h, rest = divmod(seconds, 3600)
  m, s = divmod(rest, 60)
  return f'{h}h{m:02d}m' if h else f'{m}m{s:02d}s' if m else f'{s}s'


def line(label: str, done: int, total: int, elapsed: float) -> str:
  """One progress line; the ETA assumes the rate so far holds."""
  frac = done / total if total else 1.0
  filled = int(round(WIDTH * frac))
  rate = done / elapsed if elapsed > 0 else 0.0
  eta = (total - done) / rate if rate > 0 else None
  tail = (f'ETA {duration(eta)}' if done < total and eta is not None else
          f'in {duration(elapsed)}' if done >= total else 'ETA ?')
  return (f'{label} [{"#" * filled}{"." * (WIDTH - filled)}] {100 * frac:3.0f}% '
          f'{done:,}/{total:,}  {rate:,.0f}/s  {tail}')


class Progress:
  """Calls `write(line)` at most every `interval` seconds, and once at the end (`close`)."""

  def __init__(self, label: str, total: int, write: Optional[Callable[[str], None]],
               interval: float = 1.0, clock: Callable[[], float] = time.monotonic):
    self.label, self.total, self.write = label, total, write or (lambda text: None)
    self.interval, self.clock = interval, clock
    self.start = self.last = clock()
    self.done = 0

  def update(self, n: int = 1) -> None:
    self.done += n
    now = self.clock()
    if now - self.last >= self.interval and self.done < self.total:
      self.last = now
      self.write(line(self.label, self.done, self.total, now - self.start))

  def close(self) -> None:
    self.write(line(self.label, self.done, self.total, self.clock() - self.start))
