"""Benchmark of the web studio as its users meet it: a real server process, a real HTTP client.

  python experiments/benchmark_studio.py --workdir=runs/default [--checkpoint latest]

Prints: start-up time cold (an empty compilation cache) and warm (the cache the cold start
filled); p50/p95 latency of "generate 16" and of one slider move (a SeFa edit of one product);
requests/s of each under 4 concurrent clients. Goal on 2 CPU cores at 64 px: p50 generate-16
< 150 ms, slider < 80 ms. The server runs with this machine's defaults (no forced devices).
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start_server(workdir, checkpoint, cache_dir, extra=()):
  """Starts `python -m gan.studio` on a free port; returns (process, host, port, seconds to ready,
  the lines it printed)."""
  start = time.perf_counter()
  proc = subprocess.Popen(
      [sys.executable, '-m', 'gan.studio', f'--workdir={workdir}', '--checkpoint', checkpoint,
       '--port', '0', '--compilation-cache', cache_dir, *extra],
      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
      env=dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', '')))
  lines = []
  for line in proc.stdout:
    lines.append(line.rstrip())
    if 'studio ready at ' in line:
      url = line.split('studio ready at ', 1)[1].split()[0]
      host, port = url.split('//', 1)[1].rstrip('/').rsplit(':', 1)
      return proc, host, int(port), time.perf_counter() - start, lines
  proc.wait()
  raise SystemExit('the studio did not start:\n' + '\n'.join(lines))


def stop(proc):
  proc.send_signal(signal.SIGINT)
  try:
    proc.wait(60)
  except subprocess.TimeoutExpired:
    proc.kill()


class Client:
  """One keep-alive HTTP connection."""

  def __init__(self, host, port):
    self.connection = http.client.HTTPConnection(host, port, timeout=300)

  def post(self, path, body):
    self.connection.request('POST', path, json.dumps(body),
                            {'Content-Type': 'application/json'})
    response = self.connection.getresponse()
    data = response.read()
    if response.status != 200:
      raise RuntimeError(f'{path}: {response.status} {data[:300]!r}')
    return json.loads(data)


def percentiles(seconds):
  ms = sorted(1000 * s for s in seconds)
  return statistics.median(ms), ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]


def timed(call, n):
  times = []
  for i in range(n):
    start = time.perf_counter()
    call(i)
    times.append(time.perf_counter() - start)
  return times


def throughput(host, port, make_call, clients, seconds):
  """Requests/s of `clients` threads, each on its own connection, for `seconds`."""
  done, stop_at = [0] * clients, time.perf_counter() + seconds

  def worker(k):
    client, i = Client(host, port), 0
    call = make_call(client)
    while time.perf_counter() < stop_at:
      call(k * 100000 + i)
      i += 1
    done[k] = i

  start = time.perf_counter()
  threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  return sum(done) / (time.perf_counter() - start)


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--workdir', required=True)
  parser.add_argument('--checkpoint', default='best')
  parser.add_argument('--requests', type=int, default=40, help='Timed requests per kind.')
  parser.add_argument('--clients', type=int, default=4)
  parser.add_argument('--seconds', type=float, default=10.0, help='Per throughput measurement.')
  parser.add_argument('--json-out', help='Also write the numbers here as JSON.')
  args = parser.parse_args()

  cache = tempfile.mkdtemp(prefix='studio-bench-jax-cache-')
  results = {}
  try:
    proc, host, port, cold, lines = start_server(args.workdir, args.checkpoint, cache)
    print('\n'.join(lines))
    stop(proc)
    proc, host, port, warm, lines = start_server(args.workdir, args.checkpoint, cache)
    print('\n'.join(lines))
    results.update(startup_cold_s=round(cold, 1), startup_warm_s=round(warm, 1))
    try:
      client = Client(host, port)
      generate = lambda c: lambda i: c.post('/api/generate', {'seed': i, 'count': 16})
      product = client.post('/api/generate', {'seed': 1, 'count': 1})['products'][0]
      ref = {k: product[k] for k in ('seed', 'index', 'truncation', 'attributes')}
      slider = lambda c: lambda i: c.post('/api/edit', {
          'product': ref, 'strengths': [round(-3 + (i % 61) * 0.1, 1)]})
      timed(generate(client), 3)  # Connection and first-call warm-up.
      model_ms = []
      gen_times = timed(lambda i: model_ms.append(generate(client)(1000 + i)['ms']),
                        args.requests)
      edit_times = timed(slider(client), args.requests)
      results['generate16_p50_ms'], results['generate16_p95_ms'] = map(
          lambda v: round(v, 1), percentiles(gen_times))
      results['generate16_server_model_p50_ms'] = round(statistics.median(model_ms), 1)
      results['slider_p50_ms'], results['slider_p95_ms'] = map(
          lambda v: round(v, 1), percentiles(edit_times))
      results[f'generate16_rps_{args.clients}_clients'] = round(
          throughput(host, port, generate, args.clients, args.seconds), 2)
      results[f'slider_rps_{args.clients}_clients'] = round(
          throughput(host, port, slider, args.clients, args.seconds), 2)
    finally:
      stop(proc)
  finally:
    shutil.rmtree(cache, ignore_errors=True)

  print(f'\nstudio benchmark ({os.cpu_count()} CPUs, {args.workdir}, {args.checkpoint}):')
  print(f'  start-up: cold {results["startup_cold_s"]} s (empty compilation cache), warm '
        f'{results["startup_warm_s"]} s')
  print(f'  generate 16: p50 {results["generate16_p50_ms"]} ms, p95 '
        f'{results["generate16_p95_ms"]} ms (model part p50 '
        f'{results["generate16_server_model_p50_ms"]} ms; goal p50 < 150 ms)')
  print(f'  slider move: p50 {results["slider_p50_ms"]} ms, p95 {results["slider_p95_ms"]} ms '
        '(goal p50 < 80 ms)')
  print(f'  {args.clients} concurrent clients: generate 16 '
        f'{results[f"generate16_rps_{args.clients}_clients"]} requests/s, slider '
        f'{results[f"slider_rps_{args.clients}_clients"]} requests/s')
  print(json.dumps(results))
  if args.json_out:
    with open(args.json_out, 'w') as f:
      json.dump(results, f, indent=2)


if __name__ == '__main__':
  main()
