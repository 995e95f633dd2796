"""The evaluation cache's files: keyed JSON and feature arrays, read leniently, written atomically.

A cache file that is missing or unreadable reads as None (the caller recomputes); every write
is atomic (rundir.atomic_write), on local paths and gs:// alike.
"""
import hashlib
import io
import json
from typing import Dict, Optional

import numpy as np
import tensorflow as tf
from absl import logging

from gan import rundir


def fingerprint(key: dict) -> str:
  """A short stable name for a cache key (part of a cache file's name)."""
  return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def read_json(path: str):
  if not tf.io.gfile.exists(path):
    return None
  try:
    with tf.io.gfile.GFile(path) as f:
      return json.loads(f.read())
  except (ValueError, tf.errors.OpError) as e:
    logging.warning('Ignoring unreadable %s (%s).', path, e)
    return None


def write_json(path: str, payload) -> str:
  return rundir.write_json(path, payload, sort_keys=True)


def read_npz(path: str) -> Optional[Dict[str, np.ndarray]]:
  if not tf.io.gfile.exists(path):
    return None
  try:
    with tf.io.gfile.GFile(path, 'rb') as f:
      with np.load(io.BytesIO(f.read()), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
  except (ValueError, OSError, tf.errors.OpError) as e:
    logging.warning('Ignoring unreadable feature cache %s (%s); recomputing.', path, e)
    return None


def write_npz(path: str, arrays: Dict[str, np.ndarray]) -> str:
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  return rundir.atomic_write(path, buffer.getvalue())
