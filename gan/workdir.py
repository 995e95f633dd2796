"""Workdir guards: one trainer per workdir (a lock that crashed runs do not leave stuck) and a
check that a resumed run's config is compatible with the one that wrote the checkpoints."""
import json
import os
import socket
import time
from typing import Dict, Optional, Tuple

import ml_collections
import tensorflow as tf
from absl import logging

from gan import rundir
from gan.processes import pid_alive

# A lock whose owner has not refreshed it for this long is considered abandoned (another host may
# own it, so we cannot check its pid; the owner refreshes at every log step and at least hourly).
STALE_LOCK_SECONDS = 2 * 3600

# Fields whose change makes existing checkpoints mean something else (shapes or semantics).
_INCOMPATIBLE_PREFIXES = ('model.', 'data.name', 'data.resolution', 'data.attributes',
                          'data.data_dir')
# Pure speed choices: same parameters, same function.
_COMPATIBLE_FIELDS = ('model.upsample_impl', 'model.downsample_impl')


class WorkdirLockedError(RuntimeError):
  pass


class IncompatibleConfigError(ValueError):
  pass


class WorkdirLock:
  """An exclusive lock file in the workdir, held by one training run (process 0 of it)."""

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, rundir.LOCK)
    self.owner = {'host': socket.gethostname(), 'pid': os.getpid()}
    self.held = False

  def _read(self) -> Optional[Dict]:
    try:
      with tf.io.gfile.GFile(self.path) as f:
        return json.loads(f.read())
    except (tf.errors.NotFoundError, json.JSONDecodeError, ValueError):
      return None

  def _abandoned(self, info: Optional[Dict]) -> Tuple[bool, str]:
    if info is None:
      return True, 'unreadable lock file'
    if info.get('host') == self.owner['host']:
      if not pid_alive(int(info.get('pid', -1))):
        return True, f"process {info.get('pid')} is no longer running"
      return False, ''
    age = time.time() - float(info.get('heartbeat', 0))
    if age > STALE_LOCK_SECONDS:
      return True, f'no heartbeat for {age / 3600:.1f} h'
    return False, ''

  def acquire(self) -> None:
    tf.io.gfile.makedirs(os.path.dirname(self.path))
    for _ in range(2):
      if self._try_create():
        self.held = True
        return
      info = self._read()
      abandoned, why = self._abandoned(info)
      if not abandoned:
        raise WorkdirLockedError(
            f'Another training run is using this workdir ({self.path}: host {info.get("host")}, '
            f'pid {info.get("pid")}, started {time.ctime(info.get("started", 0))}). Wait for it to '
            'finish, stop it, or use another --workdir. If that run is really gone, delete the '
            'lock file.')
      logging.warning('Taking over the lock %s left by a crashed run (%s).', self.path, why)
      tf.io.gfile.remove(self.path)
    raise WorkdirLockedError(f'Could not acquire {self.path}: another run took it meanwhile.')

  def _try_create(self) -> bool:
    now = time.time()
    payload = json.dumps(dict(self.owner, started=now, heartbeat=now))
    if '://' in self.path:  # Object stores have no O_EXCL; check-then-write is the best we can do.
      if tf.io.gfile.exists(self.path):
        return False
      with tf.io.gfile.GFile(self.path, 'w') as f:
        f.write(payload)
      return True
    try:
      fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      return False
    with os.fdopen(fd, 'w') as f:
      f.write(payload)
    return True

  def heartbeat(self) -> None:
    if not self.held:
      return
    info = self._read() or dict(self.owner, started=time.time())
    info['heartbeat'] = time.time()
    rundir.atomic_write(self.path, json.dumps(info))

  def release(self) -> None:
    if self.held:
      info = self._read()
      if info and info.get('pid') == self.owner['pid'] and info.get('host') == self.owner['host']:
        tf.io.gfile.remove(self.path)
      self.held = False

  def __enter__(self):
    self.acquire()
    return self

  def __exit__(self, *exc):
    self.release()


def flatten(config, prefix: str = '') -> Dict[str, object]:
  out = {}
  for key, value in config.items():
    if isinstance(value, (ml_collections.ConfigDict, dict)):
      out.update(flatten(value, f'{prefix}{key}.'))
    elif isinstance(value, (list, tuple)):
      out[f'{prefix}{key}'] = list(value)
    else:
      out[f'{prefix}{key}'] = value
  return out


def config_differences(saved: Dict, current: Dict) -> Dict[str, Tuple[object, object]]:
  """Fields that make checkpoints incompatible and differ: {field: (saved, current)}."""
  diffs = {}
  for key in sorted(set(saved) | set(current)):
    if not key.startswith(_INCOMPATIBLE_PREFIXES) or key in _COMPATIBLE_FIELDS:
      continue
    if saved.get(key) != current.get(key):
      diffs[key] = (saved.get(key), current.get(key))
  return diffs


def _as_flags(diffs: Dict[str, Tuple[object, object]]) -> str:
  """The command-line overrides that give back the checkpoint's values."""
  def value(v):
    return f'"{tuple(v)!r}"' if isinstance(v, list) else str(v)
  return ' '.join(f'--config.{k}={value(saved)}' for k, (saved, _) in diffs.items())


def check_and_save_config(workdir: str, config, allow_config_change: bool = False,
                          has_checkpoint: bool = False) -> None:
  """Refuses to resume a workdir whose checkpoints came from an incompatible config."""
  path = os.path.join(workdir, rundir.CONFIG)
  current = flatten(json.loads(config.to_json_best_effort()))
  if has_checkpoint and tf.io.gfile.exists(path):
    # An older run's file lacks fields added since; they take today's defaults (which keep the
    # old behaviour), as every tool reading the run does.
    saved = flatten(json.loads(rundir.load_config(workdir).to_json_best_effort()))
    diffs = config_differences(saved, current)
    if diffs and not allow_config_change:
      lines = '\n'.join(f'  {k}: checkpoint has {a!r}, this run asks for {b!r}'
                        for k, (a, b) in diffs.items())
      raise IncompatibleConfigError(
          f'The workdir {workdir} holds checkpoints of a run with a different config:\n{lines}\n'
          f'To continue that run as it was trained, add {_as_flags(diffs)}; or use another '
          '--workdir for the new config; or pass --allow-config-change to resume anyway (only '
          'safe if the parameter shapes still match).')
    if diffs:
      logging.warning('Resuming with changed config fields (allowed): %s', diffs)
  rundir.save_config(workdir, config)
