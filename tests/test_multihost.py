"""Multi-host for real: two processes x 2 CPU devices (gloo) vs one process x 4 devices; SIGTERM."""
import glob
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np

from gan import checkpoint
from tests.conftest import REPO, tool_env

WORKER = os.path.join(REPO, 'tests', 'multihost_worker.py')

CONFIG_FILE = """
from tests.conftest import tiny_config

def get_config():
  return tiny_config(**{{'data.data_dir': {data_dir!r}, 'num_train_steps': {steps},
                        'checkpoint_every_steps': 2, 'log_every_steps': 2,
                        'sample_every_steps': {sample_every}}})
"""
# Cross-process (gloo) and in-process all-reduces sum in different orders; after a few Adam steps
# parameters agree to ~1e-6.
ATOL = 2e-5


def _config(tmp_path, data_dir, steps, sample_every=0, name='cfg.py'):
  path = tmp_path / name
  path.write_text(CONFIG_FILE.format(data_dir=data_dir, steps=steps, sample_every=sample_every))
  return str(path)


def _env(devices, processes=1):
  env = tool_env(devices)
  if processes > 1:
    # Without the test session's compilation cache: a process that finds its programs there
    # reaches the first all-reduce long before its peer has compiled, and gloo's 30 s
    # rendezvous times out on a busy 2-core machine.
    env.pop('JAX_COMPILATION_CACHE_DIR', None)
  return env


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _run_all(cmds, devices, timeout=600):
  procs = [subprocess.Popen(cmd, cwd=REPO, env=_env(devices, len(cmds)), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True) for cmd in cmds]
  outs = [p.communicate(timeout=timeout)[0] for p in procs]
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-4000:]
  return outs


def test_two_processes_match_one_process_and_checkpoints_interchange(tfds_dir, tmp_path):
  config = _config(tmp_path, tfds_dir, steps=4, sample_every=4)
  multi = str(tmp_path / 'multi')
  port = _free_port()
  _run_all([[sys.executable, WORKER, config, multi, str(tmp_path / f'proc{i}.npz'),
             f'127.0.0.1:{port}', '2', str(i)] for i in range(2)], devices=2)
  single = str(tmp_path / 'single')
  _run_all([[sys.executable, WORKER, config, single, str(tmp_path / 'single.npz')]], devices=4)

  p0, p1, s = (np.load(tmp_path / f'{n}.npz') for n in ('proc0', 'proc1', 'single'))
  assert set(p0.files) == set(p1.files) == set(s.files)
  for k in p0.files:
    np.testing.assert_array_equal(p0[k], p1[k], err_msg=f'processes disagree on {k}')
    np.testing.assert_allclose(p0[k], s[k], atol=ATOL, rtol=1e-4, err_msg=k)
  assert int(p0['.step']) == 4

  # Only process 0 wrote summaries and samples; the checkpoint is complete.
  assert len(glob.glob(os.path.join(multi, 'events.out.tfevents.*'))) == 1
  assert glob.glob(os.path.join(multi, 'samples', '*_0000004.png'))
  assert checkpoint.Checkpointer(multi, read_only=True).steps() == [2, 4]

  # The two-process checkpoint resumes in a one-process run.
  more = _config(tmp_path, tfds_dir, steps=6, name='cfg6.py')
  out = _run_all([[sys.executable, '-m', 'gan.main', f'--config={more}', f'--workdir={multi}']],
                 devices=4)[0]
  assert 'Resumed from the checkpoint at step 4' in out
  assert checkpoint.Checkpointer(multi, read_only=True).latest_step() == 6


def _committed_steps_after(workdir, step):
  done = glob.glob(os.path.join(workdir, 'checkpoints', '*', 'commit_success.txt'))
  return [int(os.path.basename(os.path.dirname(p))) for p in done
          if os.path.basename(os.path.dirname(p)).isdigit()
          and int(os.path.basename(os.path.dirname(p))) > step]


def test_sigterm_checkpoints_and_exits_zero_then_resumes(tfds_dir, tmp_path):
  config = _config(tmp_path, tfds_dir, steps=10_000)
  workdir = str(tmp_path / 'run')
  cmd = [sys.executable, '-m', 'gan.main', f'--config={config}', f'--workdir={workdir}']
  proc = subprocess.Popen(cmd, cwd=REPO, env=_env(2), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
  deadline = time.time() + 600
  while not glob.glob(os.path.join(workdir, 'checkpoints', '2', 'commit_success.txt')):
    assert proc.poll() is None and time.time() < deadline
    time.sleep(0.05)
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out[-4000:]
  assert 'Preempted: saved the checkpoint of step' in out
  stopped = checkpoint.Checkpointer(workdir, read_only=True).latest_step()
  assert 2 <= stopped < 10_000
  assert not os.path.exists(os.path.join(workdir, 'train.lock'))

  # Rerunning the same command resumes there (stopped again by SIGTERM right after resuming).
  proc = subprocess.Popen(cmd, cwd=REPO, env=_env(2), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
  while not _committed_steps_after(workdir, stopped):
    assert proc.poll() is None and time.time() < deadline + 300
    time.sleep(0.05)
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out[-4000:]
  assert f'Resumed from the checkpoint at step {stopped}' in out


def test_sigterm_on_a_multi_process_run_checkpoints_every_process_and_exits_zero(tfds_dir,
                                                                                  tmp_path):
  """A preemption notice reaches one host: every process stops at the same step, the checkpoint
  of that step is complete, and all exit 0."""
  config = _config(tmp_path, tfds_dir, steps=10_000)
  workdir = str(tmp_path / 'run')
  port = _free_port()
  procs = [subprocess.Popen(
      [sys.executable, '-m', 'gan.main', f'--config={config}', f'--workdir={workdir}',
       f'--coordinator_address=127.0.0.1:{port}', '--num_processes=2', f'--process_id={i}'],
      cwd=REPO, env=_env(2, processes=2), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
      text=True) for i in range(2)]
  try:
    deadline = time.time() + 600
    while not glob.glob(os.path.join(workdir, 'checkpoints', '2', 'commit_success.txt')):
      if not all(p.poll() is None for p in procs) or time.time() > deadline:
        for p in procs:
          p.kill()
        outs = [p.communicate()[0][-3000:] for p in procs]
        raise AssertionError(f'exit codes {[p.returncode for p in procs]} before the first '
                             'checkpoint:\n' + '\n----\n'.join(outs))
      time.sleep(0.05)
    procs[1].send_signal(signal.SIGTERM)
    outs = [p.communicate(timeout=300)[0] for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  stopped = checkpoint.Checkpointer(workdir, read_only=True).latest_step()
  assert 2 <= stopped < 10_000
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-4000:]
    assert f'Preempted: saved the checkpoint of step {stopped}' in out, out[-4000:]
  assert not os.path.exists(os.path.join(workdir, 'train.lock'))
