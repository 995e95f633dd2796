"""Decoding a catalogue's photos on every core, streaming: files in, fitted PNGs out to a staging
file on disk, never all images in memory.

Workers (spawned processes: no TensorFlow state is forked) read, check, decode, fit and PNG-encode
one chunk of files each; the parent takes their results back in file order, so "the first copy
wins" is the same on any number of cores, and keeps only a bounded window of chunks in flight.
What the parent holds per image is two 16-byte digests and a file offset.
"""
import array
import collections
import concurrent.futures
import concurrent.futures.process
import dataclasses
import hashlib
import io
import multiprocessing
import os
import signal
from typing import Callable, Iterator, List, Optional, Sequence

import numpy as np
from PIL import Image

from gan.data import images
from gan.data.catalog_report import CatalogError, Skipped
from gan.data.catalog_scan import Candidate

CHUNK = 16  # Files per task: big enough to hide the inter-process cost, small for the ETA.
DEFAULT_MAX_PIXELS = 64_000_000  # An 8000x8000 photo; a 3-byte RGB copy is 192 MB per worker.
DEFAULT_MAX_ASPECT = 8.0  # Long side / short side; 60x80 is 1.33, a wide banner 4.


@dataclasses.dataclass(frozen=True)
class Settings:
  resolution: int
  fit: str
  background: object
  max_pixels: Optional[int] = DEFAULT_MAX_PIXELS
  max_aspect: Optional[float] = DEFAULT_MAX_ASPECT


def _digest(data: bytes) -> bytes:
  return hashlib.blake2b(data, digest_size=16).digest()


def _png(array_: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(array_).save(buffer, format='PNG')
  return buffer.getvalue()


def decode_file(path: str, s: Settings) -> tuple:
  """One file -> ('ok', byte digest, pixel digest, png, upscaled) or ('skip', reason, detail)."""
  try:
    data = images.read_bytes(path)
    image = images.decode_image(data, images.matte_for(s.background),
                                draft_size=3 * s.resolution, max_pixels=s.max_pixels,
                                max_aspect=s.max_aspect)
    pixels = _digest(repr(image.size).encode() + image.tobytes())
    side = max(image.size) if s.fit == 'pad' else min(image.size)
    png = _png(images.fit_image(image, s.resolution, s.fit, s.background))
    return 'ok', _digest(data), pixels, png, side < s.resolution
  except images.ImageError as e:
    reason, detail = e.reason, e.detail
    if reason == 'not_an_image' and images.is_image_name(path):
      reason, detail = 'corrupt', f'named like an image but {detail}'
    return 'skip', reason, detail


_SETTINGS: Optional[Settings] = None


def _die_with_parent(parent: int) -> None:
  """Linux: the kernel kills this worker when the build process dies (even by SIGKILL), so a
  killed build leaves no orphan workers behind."""
  try:
    import ctypes  # pylint: disable=g-import-not-at-top
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG.
  except (OSError, AttributeError):  # Not Linux: workers notice a dead parent at their next task.
    return
  if os.getppid() != parent:  # It died before the line above.
    os._exit(1)


def _init_worker(settings: Settings, parent: int) -> None:
  global _SETTINGS
  _die_with_parent(parent)
  signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle.
  Image.MAX_IMAGE_PIXELS = pillow_limit(settings)
  _SETTINGS = settings


def pillow_limit(settings: Settings) -> Optional[int]:
  """Pillow's own bomb guard to set: never stricter than ours (ours is checked first, with a
  clearer message), and off with --max-pixels 0."""
  if not settings.max_pixels:
    return None
  return max(settings.max_pixels, Image.MAX_IMAGE_PIXELS or 0)


def _decode_chunk(paths: Sequence[str]) -> List[tuple]:
  return [decode_file(p, _SETTINGS) for p in paths]


def _chunks(candidates: Sequence[Candidate], source: str, size: int) -> Iterator[List[str]]:
  for i in range(0, len(candidates), size):  # Absolute paths made as needed, not all at once.
    yield [os.path.join(source, c.path) for c in candidates[i:i + size]]


def ordered_map(fn: Callable, chunks: Iterator, submit: Optional[Callable], window: int
                ) -> Iterator:
  """fn over chunks, results in input order, at most `window` chunks submitted and not yet
  taken back (so memory stays bounded however fast the workers run). submit=None: in-process."""
  if submit is None:
    for chunk in chunks:
      yield from fn(chunk)
    return
  pending = collections.deque()
  for chunk in chunks:
    pending.append(submit(fn, chunk))
    while len(pending) >= window:
      yield from pending.popleft().result()
  while pending:
    yield from pending.popleft().result()


class Staged:
  """The fitted PNGs, appended to one file as they come; read back by position."""

  def __init__(self, path: str):
    self.path = path
    self.offsets = array.array('q')
    self.lengths = array.array('q')
    self._file = open(path, 'wb')
    self._reader = None

  def append(self, data: bytes) -> int:
    self.offsets.append(self._file.tell())
    self.lengths.append(len(data))
    self._file.write(data)
    return len(self.offsets) - 1

  def finish(self) -> None:
    self._file.close()

  def read(self, position: int) -> bytes:
    if self._reader is None:
      self._reader = open(self.path, 'rb')
    self._reader.seek(self.offsets[position])
    return self._reader.read(self.lengths[position])

  def close(self) -> None:
    for f in (self._file, self._reader):
      if f is not None:
        f.close()


@dataclasses.dataclass
class Decoded:
  kept: List[int]  # Candidate index of each staged image, in staging order.
  skipped: List[Skipped]
  upscaled: int


def default_workers() -> int:
  try:
    return max(1, len(os.sched_getaffinity(0)))
  except AttributeError:  # Not on Linux.
    return max(1, os.cpu_count() or 1)


def workers_for(num_files: int, workers: int) -> int:
  """Processes a build of num_files really uses: a few files do not pay for starting workers."""
  return workers if num_files > CHUNK else 1


def _duplicate(first: Candidate, c: Candidate, what: str, features: Sequence[str]) -> str:
  differ = [f'{f} {a!r} vs {b!r}' for f, a, b in zip(features, first.values, c.values) if a != b]
  return f'{what} {first.path}' + (f' (labels differ: {"; ".join(differ)})' if differ else '')


def decode_all(candidates: Sequence[Candidate], source: str, settings: Settings,
               staged: Staged, features: Sequence[str], workers: int = 1,
               progress: Optional[Callable[[int], None]] = None) -> Decoded:
  """Decodes, validates, de-duplicates (first copy wins) and stages every candidate."""
  progress = progress or (lambda n: None)
  kept, skipped, upscaled = [], [], 0
  by_bytes, by_pixels = {}, {}
  executor = None
  if workers_for(len(candidates), workers) > 1:
    executor = concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context('spawn'),
        initializer=_init_worker, initargs=(settings, os.getpid()))
    fn, submit = _decode_chunk, executor.submit
  else:
    fn, submit = (lambda chunk: [decode_file(p, settings) for p in chunk]), None
  pillow_default = Image.MAX_IMAGE_PIXELS
  Image.MAX_IMAGE_PIXELS = pillow_limit(settings)  # For in-process decoding; restored below.
  try:
    results = ordered_map(fn, _chunks(candidates, source, CHUNK), submit, window=2 * workers + 2)
    for i, result in enumerate(results):
      c = candidates[i]
      progress(1)
      if result[0] == 'skip':
        skipped.append(Skipped(c.path, result[1], result[2], c.row))
        continue
      _, by_b, by_p, png, small = result
      first = by_bytes.get(by_b)
      what = 'same bytes as'
      if first is None:
        first, what = by_pixels.get(by_p), 'same decoded pixels as'
      if first is not None:
        skipped.append(Skipped(c.path, 'duplicate',
                               _duplicate(candidates[kept[first]], c, what, features), c.row))
        continue
      upscaled += small
      by_bytes[by_b] = by_pixels[by_p] = staged.append(png)
      kept.append(i)
    staged.finish()
  except concurrent.futures.process.BrokenProcessPool as e:
    raise CatalogError(
        f'A decoding worker died ({e}): out of memory (lower --max-pixels or --workers), or a '
        'file that crashes the image library. Nothing was installed; rerun with --workers 1 '
        'to see which file it is.') from None
  finally:
    Image.MAX_IMAGE_PIXELS = pillow_default
    if executor is not None:
      executor.shutdown(wait=True, cancel_futures=True)
  return Decoded(kept=kept, skipped=skipped, upscaled=upscaled)
