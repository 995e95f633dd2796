"""Never lose a run: exact resume after SIGKILL, damaged checkpoints, divergence, locks, configs."""
import glob
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from gan import checkpoint, rundir, train, workdir as workdir_lib
from tests.conftest import REPO, tiny_config, tool_env


CONFIG_FILE = """
from tests.conftest import tiny_config

def get_config():
  return tiny_config(**{{'data.data_dir': {data_dir!r}, 'num_train_steps': {steps},
                        'checkpoint_every_steps': 2, 'log_every_steps': 2,
                        'sample_every_steps': 0}})
"""


def _write_config(tmp_path, data_dir, steps):
  path = tmp_path / 'cfg.py'
  path.write_text(CONFIG_FILE.format(data_dir=data_dir, steps=steps))
  return str(path)


def _launch(config_path, workdir):
  return subprocess.Popen([sys.executable, '-m', 'gan.main', f'--config={config_path}',
                           f'--workdir={workdir}'], cwd=REPO, env=tool_env(2),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _restore_leaves(workdir, step):
  ckpt = checkpoint.Checkpointer(workdir, read_only=True)
  restored = ckpt.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
  leaves = jax.tree_util.tree_leaves(restored['state'])
  assert len(leaves) > 20
  return leaves


# The kill's delay after the first checkpoint is drawn from this seed; a failure prints it, and
# PRODUCTGAN_KILL_SEED=N reruns the test with that delay.
KILL_SEED = int(os.environ.get('PRODUCTGAN_KILL_SEED', '0'))


def _wait_for_checkpoint(proc, workdir, step, deadline):
  marker = os.path.join(workdir, 'checkpoints', str(step), 'commit_success.txt')
  while not os.path.exists(marker):
    if proc.poll() is not None and not os.path.exists(marker):  # Re-read: it may just have ended.
      raise AssertionError(f'the run ended before step {step}: {proc.stdout.read()[-3000:]}')
    assert time.time() < deadline, f'no checkpoint at step {step} in {workdir}'
    time.sleep(0.02)
  return time.time()


def test_sigkill_at_a_random_step_then_resume_is_bitwise_identical(tfds_dir, tmp_path):
  steps = 8
  config_path = _write_config(tmp_path, tfds_dir, steps)
  reference = str(tmp_path / 'reference')
  proc = _launch(config_path, reference)
  # The reference run times the window between its first and last checkpoint on this machine,
  # so the kill lands inside the run however fast the machine is.
  deadline = time.time() + 600
  first = _wait_for_checkpoint(proc, reference, 2, deadline)
  last = _wait_for_checkpoint(proc, reference, steps, deadline)
  out, _ = proc.communicate(timeout=600)
  assert proc.returncode == 0, out[-3000:]
  fraction = random.Random(KILL_SEED).uniform(0.0, 0.7)
  killed = str(tmp_path / 'killed')
  # A run can go faster than its reference (warm compilation cache, a quieter machine); when the
  # kill came after the end, kill a fresh run sooner.
  for attempt in range(4):
    delay = fraction * (last - first) / 2 ** attempt
    context = (f'(PRODUCTGAN_KILL_SEED={KILL_SEED}: killed {delay:.3f} s after the first '
               f'checkpoint, attempt {attempt + 1}; reference {last - first:.3f} s between its '
               'first and last checkpoint)')
    shutil.rmtree(killed, ignore_errors=True)
    proc = _launch(config_path, killed)
    _wait_for_checkpoint(proc, killed, 2, time.time() + 600)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    interrupted_at = checkpoint.Checkpointer(killed, read_only=True).latest_step()
    if proc.returncode == -signal.SIGKILL and interrupted_at < steps:
      break
  assert proc.returncode == -signal.SIGKILL, context
  assert interrupted_at is not None and interrupted_at < steps, context

  proc = _launch(config_path, killed)  # The same command again.
  out, _ = proc.communicate(timeout=600)
  assert proc.returncode == 0, f'{context}\n{out[-3000:]}'
  assert f'Resumed from the checkpoint at step {interrupted_at}' in out, context

  a, b = _restore_leaves(reference, steps), _restore_leaves(killed, steps)
  assert len(a) == len(b)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=context)


def _damage(step_dir, how):
  if how == 'truncated':
    for f in glob.glob(os.path.join(step_dir, 'state', '**', 'd', '*'), recursive=True):
      with open(f, 'r+b') as fh:
        fh.truncate(os.path.getsize(f) // 2)
  elif how == 'missing':
    for f in glob.glob(os.path.join(step_dir, 'state', '**', 'manifest.ocdbt'), recursive=True):
      os.remove(f)


@pytest.mark.parametrize('how', ['truncated', 'missing'])
def test_damaged_latest_checkpoint_falls_back_and_is_kept(tfds_dir, tmp_path, how, caplog):
  workdir = str(tmp_path / 'run')
  config = tiny_config(**{'data.data_dir': tfds_dir, 'sample_every_steps': 0})
  train.train_and_evaluate(config, workdir)
  _damage(os.path.join(workdir, 'checkpoints', '4'), how)
  caplog.set_level('INFO')
  caplog.set_level('INFO', logger='absl')  # Whatever level an earlier test left absl's logger at.
  # A half-written step directory of a killed save is ignored too.
  os.makedirs(os.path.join(workdir, 'checkpoints', '6.orbax-checkpoint-tmp-1234'))
  config.num_train_steps = 6
  state = train.train_and_evaluate(config, workdir)
  assert int(state.step) == 6
  assert 'Checkpoint at step 4' in caplog.text and 'damaged' in caplog.text
  assert 'Resumed from the checkpoint at step 2' in caplog.text
  kept = glob.glob(os.path.join(workdir, 'checkpoints_damaged', '4-*'))
  assert len(kept) == 1 and os.listdir(kept[0])
  assert checkpoint.Checkpointer(workdir).steps() == [2, 4, 6]


def test_transient_read_errors_are_retried_and_never_taken_for_damage(trained_run_dir, tmp_path,
                                                                     monkeypatch):
  """A gs:// hiccup must not move the latest checkpoint aside: retry, then stop, moving nothing."""
  workdir = str(tmp_path / 'run')
  shutil.copytree(trained_run_dir, workdir)
  monkeypatch.setattr(checkpoint, 'RETRY_SECONDS', 0.0)
  real_restore = checkpoint.Checkpointer._restore
  failures = {'left': 2}

  def flaky(self, template, step):
    if failures['left']:
      failures['left'] -= 1
      raise ValueError('Error reading "state/d/1234": UNAVAILABLE: Connection reset by peer')
    return real_restore(self, template, step)
  monkeypatch.setattr(checkpoint.Checkpointer, '_restore', flaky)
  template = _restore_template(workdir)
  ckpt = checkpoint.Checkpointer(workdir)
  _, step = ckpt.restore(template)  # Two hiccups, then the read succeeds.
  assert step == 4 and failures['left'] == 0

  failures['left'] = 10**6  # The storage stays unreachable.
  with pytest.raises(checkpoint.CheckpointUnavailableError,
                     match=r'step 4 .* after 3 attempt.*not damage: nothing was moved'):
    ckpt.restore(template)
  assert failures['left'] == 10**6 - checkpoint.READ_ATTEMPTS  # No fall back to step 2.
  assert ckpt.steps() == [2, 4]
  assert not os.path.exists(os.path.join(workdir, 'checkpoints_damaged'))

  # Real damage is still damage: it is not retried locally, and training falls back.
  monkeypatch.setattr(checkpoint.Checkpointer, '_restore', real_restore)
  with pytest.raises(checkpoint.CheckpointError, match='step 4 .* is damaged'):
    _damage(os.path.join(workdir, 'checkpoints', '4'), 'truncated')
    ckpt.restore(template, 4)
  assert ckpt.restore(template)[1] == 2
  assert glob.glob(os.path.join(workdir, 'checkpoints_damaged', '4-*'))


def _restore_template(workdir):
  from gan.control import loading
  run_config = rundir.load_config(workdir)
  vocab = loading.Vocabulary.load(workdir)
  generator, discriminator = loading.build_models(run_config, vocab.num_classes)
  return loading.state_template(run_config, generator, discriminator, vocab.num_classes)


def test_only_the_closed_event_loop_echo_of_a_failed_read_is_silenced():
  """A damaged checkpoint's sibling reads finish after orbax closed its event loop; their
  callbacks' 'Event loop is closed' must not print tracebacks, and nothing else is dropped."""
  import asyncio
  loop = asyncio.new_event_loop()
  loop.close()
  try:
    loop.call_soon_threadsafe(print)
  except RuntimeError as e:
    echo = e
  assert checkpoint._is_closed_loop_echo(RuntimeError, echo, echo.__traceback__)
  try:
    raise RuntimeError('Event loop is closed')  # Same words, raised elsewhere: a real error.
  except RuntimeError as e:
    assert not checkpoint._is_closed_loop_echo(RuntimeError, e, e.__traceback__)
  assert not checkpoint._is_closed_loop_echo(ValueError, ValueError('x'), None)


def test_divergence_stops_loudly_and_keeps_last_good_checkpoint(tfds_dir, tmp_path):
  workdir = str(tmp_path / 'run')
  config = tiny_config(**{'data.data_dir': tfds_dir, 'sample_every_steps': 0})
  train.train_and_evaluate(config, workdir)
  config.num_train_steps = 8
  config.optim.d_lr = config.optim.g_lr = 1e38  # Guaranteed to overflow.
  with pytest.raises(train.DivergenceError, match=r'diverged at step 5: non-finite .*last good '
                                                  r'checkpoint is step 4'):
    train.train_and_evaluate(config, workdir, allow_config_change=True)
  assert checkpoint.Checkpointer(workdir).latest_step() == 4
  assert not os.path.exists(os.path.join(workdir, rundir.LOCK))


def test_second_trainer_on_same_workdir_refuses(tmp_path):
  workdir = str(tmp_path / 'run')
  with workdir_lib.WorkdirLock(workdir):
    with pytest.raises(workdir_lib.WorkdirLockedError, match='Another training run'):
      workdir_lib.WorkdirLock(workdir).acquire()
  # Released: can be taken again.
  with workdir_lib.WorkdirLock(workdir):
    pass


def test_lock_of_a_crashed_run_is_taken_over(tmp_path):
  workdir = str(tmp_path / 'run')
  dead = subprocess.Popen([sys.executable, '-c', 'pass'])
  dead.wait()
  lock = workdir_lib.WorkdirLock(workdir)
  lock.owner = dict(lock.owner, pid=dead.pid)
  lock.acquire()  # Written as if by the dead process, never released.
  with workdir_lib.WorkdirLock(workdir) as fresh:
    assert fresh.held


def test_incompatible_config_is_refused_with_the_differing_fields(tfds_dir, tmp_path):
  workdir = str(tmp_path / 'run')
  config = tiny_config(**{'data.data_dir': tfds_dir, 'sample_every_steps': 0, 'num_train_steps': 2})
  train.train_and_evaluate(config, workdir)
  changed = tiny_config(**{'data.data_dir': tfds_dir, 'sample_every_steps': 0,
                           'num_train_steps': 4, 'model.g_width': 16})
  with pytest.raises(workdir_lib.IncompatibleConfigError,
                     match=r'model.g_width: checkpoint has 8, this run asks for 16') as info:
    train.train_and_evaluate(changed, workdir)
  assert 'add --config.model.g_width=8' in str(info.value)  # How to continue the old run.
  # Moving the dataset is flagged too, and allowed explicitly.
  moved = tiny_config(**{'data.data_dir': tfds_dir + '/', 'sample_every_steps': 0,
                         'num_train_steps': 4})
  with pytest.raises(workdir_lib.IncompatibleConfigError, match='data.data_dir'):
    train.train_and_evaluate(moved, workdir)
  assert int(train.train_and_evaluate(moved, workdir, allow_config_change=True).step) == 4


def test_a_run_saved_before_a_field_existed_still_resumes(tfds_dir, tmp_path):
  """A field added since (its default keeps the old behaviour) is no config change."""
  workdir = str(tmp_path / 'run')
  config = tiny_config(**{'data.data_dir': tfds_dir, 'sample_every_steps': 0, 'num_train_steps': 2})
  train.train_and_evaluate(config, workdir)
  path = os.path.join(workdir, rundir.CONFIG)
  with open(path) as f:
    saved = json.load(f)
  del saved['model']['aux_head_features']  # As written by a version without it.
  with open(path, 'w') as f:
    json.dump(saved, f)
  config.num_train_steps = 4
  assert int(train.train_and_evaluate(config, workdir).step) == 4
  # A field the old run did have, changed, is still refused.
  with open(path) as f:
    saved = json.load(f)
  del saved['model']['aux_head_features']
  saved['model']['g_width'] = 16
  with open(path, 'w') as f:
    json.dump(saved, f)
  config.num_train_steps = 6
  with pytest.raises(workdir_lib.IncompatibleConfigError, match='model.g_width'):
    train.train_and_evaluate(config, workdir)
