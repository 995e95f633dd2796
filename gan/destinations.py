"""Checks, before the work starts, that an output can be written where the user asked for it.

Local paths are checked with `os` (no TensorFlow import on the way to an error), gs:// and other
remote paths with tf.io.gfile. Writing errors that still happen later (a full disk, a bucket that
forbids writes) become an OutputError through `writing(...)`: gfile's errors are not OSErrors.
"""
import contextlib
import os
import sys
import uuid

from gan.errors import OutputError


class _Local:
  exists, isdir = staticmethod(os.path.exists), staticmethod(os.path.isdir)

  @staticmethod
  def probe(directory: str) -> None:
    path = os.path.join(directory, f'.productgan-write-test-{uuid.uuid4().hex}')
    with open(path, 'wb'):
      pass
    os.remove(path)


class _Remote:
  @staticmethod
  def exists(path):
    import tensorflow as tf
    return tf.io.gfile.exists(path)

  @staticmethod
  def isdir(path):
    import tensorflow as tf
    return tf.io.gfile.isdir(path)

  @staticmethod
  def probe(directory: str) -> None:
    import tensorflow as tf
    path = os.path.join(directory, f'.productgan-write-test-{uuid.uuid4().hex}')
    with tf.io.gfile.GFile(path, 'wb') as f:
      f.write(b'')
    tf.io.gfile.remove(path)


def _fs(path: str):
  return _Remote if '://' in path else _Local


def reason(error: BaseException) -> str:
  """The short cause of an OSError or a tf.errors.OpError (whose str() repeats the path)."""
  text = getattr(error, 'strerror', None) or getattr(error, 'message', None) or str(error)
  return str(text).strip().rstrip('.')


def _check_can_create(directory: str, flag: str, path: str) -> None:
  """The nearest existing folder on the way to `directory` must be a folder we may write into."""
  fs = _fs(directory)
  existing = directory or '.'
  while not fs.exists(existing):
    parent = os.path.dirname(existing.rstrip('/')) or '.'
    if parent == existing:
      break
    existing = parent
  if not fs.isdir(existing):
    raise OutputError(f'{flag} {path}: {existing} is a file, so the folder {directory} cannot be '
                      'created there. Choose another path.')
  try:
    fs.probe(existing)
  except Exception as e:  # OSError locally; tf.errors.OpError (not an OSError) on gs://.
    raise OutputError(f'{flag} {path}: cannot write into {existing} ({reason(e)}). Choose a '
                      'writable location.') from e


def check_file(path: str, flag: str, example: str = 'out.png') -> None:
  """Refuses an output file path that is a folder or lies where nothing can be written."""
  if _fs(path).isdir(path):
    raise OutputError(f'{flag} {path} is a folder; give a file name, e.g. '
                      f'{os.path.join(path, example)}.')
  _check_can_create(os.path.dirname(path), flag, path)


def check_folder(path: str, flag: str) -> None:
  """Refuses an output folder path that is a file or lies where nothing can be written."""
  fs = _fs(path)
  if fs.exists(path) and not fs.isdir(path):
    raise OutputError(f'{flag} {path} is a file, not a folder. Give a folder (it is created if '
                      'missing).')
  _check_can_create(path, flag, path)


@contextlib.contextmanager
def writing(path: str, what: str = 'the output'):
  """Turns a failed write inside the block into an OutputError naming the path."""
  try:
    yield
  except Exception as e:  # pylint: disable=broad-except; re-raised unless a write error.
    if not _is_write_error(e):
      raise
    raise OutputError(f'could not write {what} {path}: {reason(e)}.') from e


def _is_write_error(error: BaseException) -> bool:
  if isinstance(error, OSError):
    return True
  tf = sys.modules.get('tensorflow')  # Only gfile raises OpError, and only once it is imported.
  return tf is not None and isinstance(error, tf.errors.OpError)
