"""tune_malloc: one glibc arena, so blocks freed by worker threads are reused, not faulted in again."""
import subprocess
import sys

import pytest

# Worker threads allocate and free 40 MB blocks, as XLA's threads do with each step's temporaries;
# then the process reports how many malloc arenas exist and the page faults of a second round.
_PROBE = '''
import ctypes, os, resource, sys, tempfile, threading
import numpy as np
from gan import runtime
if sys.argv[1] == 'tuned':
  assert runtime.tune_malloc()

def work():
  for _ in range(10):
    block = np.ones(40 * 2 ** 20 // 8)
    del block

def run_threads():
  threads = [threading.Thread(target=work) for _ in range(2)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()

run_threads()  # The first round may grow the heap.
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
run_threads()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
libc = ctypes.CDLL('libc.so.6')
libc.fopen.restype = ctypes.c_void_p
path = os.path.join(tempfile.mkdtemp(), 'malloc_info.xml')
f = libc.fopen(path.encode(), b'w')
libc.malloc_info(0, ctypes.c_void_p(f))
libc.fclose(ctypes.c_void_p(f))
print(open(path).read().count('<heap nr='), faults)
'''


def _probe(mode: str):
  out = subprocess.run([sys.executable, '-c', _PROBE, mode], capture_output=True, text=True,
                       check=True)
  arenas, faults = out.stdout.strip().splitlines()[-1].split()
  return int(arenas), int(faults)


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc malloc tuning')
def test_tuned_malloc_keeps_one_arena_and_reuses_freed_blocks():
  default_arenas, default_faults = _probe('default')
  arenas, faults = _probe('tuned')
  # By default each new thread gets its own arena (unmapped when emptied, then faulted in again).
  assert default_arenas > 1, 'expected glibc to give the worker threads their own arenas'
  assert arenas == 1, f'tune_malloc left {arenas} malloc arenas'
  # 20 blocks of 10k pages: with reuse, (almost) none of them is faulted in again.
  assert faults < 200, f'tune_malloc left {faults} page faults (default: {default_faults})'
