"""Process checks shared by the workdir lock and the catalogue builder; imports nothing heavy (the
builder must not load TensorFlow before it writes)."""
import os


def pid_alive(pid: int) -> bool:
  """Whether a process with this pid runs on this host."""
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except OSError:  # e.g. PermissionError: it exists but is someone else's.
    return True
  return True
