"""python -m gan.studio --workdir=DIR: a product studio in the browser on a trained run.

  python -m gan.studio --workdir=runs/default
  python -m gan.studio --workdir=runs/default --port 8080 --checkpoint latest

Pick attributes (or type "navy striped handbag"), generate a grid, open a product to see it in
every colour, move the edit sliders, interpolate to another product, download a PNG; upload a
photo to see it in other attributes. Start-up compiles every model program first (a later start
loads them from the compilation cache) and prints the URL once the studio answers.

Safety: the studio listens on 127.0.0.1 (this machine only) unless --host says otherwise; it has no
authentication, so on another address anyone who can reach the port can use it. Uploads are limited
in bytes and in pixels and never written to disk; inversions are bounded in number and in time.
"""
import atexit
import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from typing import Iterator, Optional, Sequence

from gan import errors, flag_style, quiet

PROG = 'python -m gan.studio'
LOOPBACK = ('127.0.0.1', 'localhost', '::1')


class UsageError(ValueError):
  pass


class _Parser(flag_style.ArgumentParser):
  def error(self, message):
    raise UsageError(message)


def build_parser():
  import argparse
  parser = _Parser(prog=PROG, description=__doc__,
                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--workdir', required=True, help='Workdir of a trained run.')
  parser.add_argument('--checkpoint', default='best',
                      help='best (default; the latest when evaluation has not picked one), '
                      'latest, or a step number.')
  parser.add_argument('--host', default='127.0.0.1',
                      help='Address to listen on. Default 127.0.0.1: this machine only. Another '
                      'address (e.g. 0.0.0.0) lets other machines in: there is no authentication.')
  parser.add_argument('--port', type=int, default=8000,
                      help='Port (default 8000; 0 picks a free one, printed at start).')
  parser.add_argument('--max-upload-mb', type=float, default=10.0,
                      help='Largest photo upload in MB (default 10).')
  parser.add_argument('--max-upload-pixels', type=int, default=40_000_000,
                      help='Largest photo in pixels, checked before decoding (default 40 million).')
  parser.add_argument('--invert-steps', type=int, default=150,
                      help='Optimisation steps per photo inversion (default 150).')
  parser.add_argument('--invert-restarts', type=int, default=4,
                      help='Random starts per photo inversion, optimised together (default 4).')
  parser.add_argument('--max-jobs', type=int, default=2,
                      help='Photo inversions queued or running at once (default 2); more are '
                      'refused until one finishes.')
  parser.add_argument('--job-timeout', type=float, default=300.0,
                      help='Seconds an inversion may run before it is stopped (default 300).')
  parser.add_argument('--compilation-cache', default=None, metavar='DIR',
                      help='Folder of compiled programs kept between starts (default '
                      '~/.cache/productgan/jax or $JAX_COMPILATION_CACHE_DIR; "none": off).')
  quiet.add_flag(parser)
  return parser


def check_args(args) -> None:
  if not 0 <= args.port <= 65535:
    raise UsageError(f'--port must be in 0..65535 (0 = any free port); got {args.port}.')
  if not args.max_upload_mb > 0 or args.max_upload_pixels < 1:
    raise UsageError('--max-upload-mb and --max-upload-pixels must be positive.')
  from gan.control.loading import parse_checkpoint
  parse_checkpoint(args.checkpoint)  # A ValueError in words, before anything slow.
  if args.max_jobs < 1 or not args.job_timeout > 0:
    raise UsageError(f'--max-jobs must be >= 1 and --job-timeout > 0; got {args.max_jobs}, '
                     f'{args.job_timeout}.')


def bind(host: str, port: int) -> socket.socket:
  """The listening socket, bound before the (slow) model start so a taken port fails at once."""
  try:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
  except OSError as e:
    raise UsageError(f'cannot listen on {host}:{port} ({e.strerror or e}); pick another --port '
                     '(0 = any free one) or --host.') from e
  return sock


def url_of(sock: socket.socket) -> str:
  host, port = sock.getsockname()[:2]
  host = f'[{host}]' if ':' in host else host
  return f'http://{host}:{port}/'


@contextlib.contextmanager
def private_tempdir() -> Iterator[str]:
  """A temporary folder for anything a library writes while the studio runs; removed afterwards
  (and at exit, should the process end another way)."""
  path = tempfile.mkdtemp(prefix='productgan-studio-')
  atexit.register(shutil.rmtree, path, ignore_errors=True)
  saved = tempfile.tempdir, os.environ.get('TMPDIR')
  tempfile.tempdir, os.environ['TMPDIR'] = path, path
  try:
    yield path
  finally:
    tempfile.tempdir = saved[0]
    if saved[1] is None:
      os.environ.pop('TMPDIR', None)
    else:
      os.environ['TMPDIR'] = saved[1]
    shutil.rmtree(path, ignore_errors=True)


def serve(args) -> int:
  started = time.perf_counter()
  check_args(args)
  sock = bind(args.host, args.port)
  with contextlib.closing(sock), private_tempdir(), _stopped_by_signals():
    from gan.studio import compile_cache
    cache = compile_cache.enable(compile_cache.default_dir() if args.compilation_cache is None
                                 else args.compilation_cache)
    cached_before = compile_cache.entries(cache)

    import uvicorn
    from gan.control import inversion, loading
    from gan.studio import app as app_lib, engine as engine_lib, uploads
    run = loading.load_run(args.workdir, args.checkpoint)
    loaded = time.perf_counter() - started
    print(f'{args.workdir}: {run.checkpoint} checkpoint, step {run.step}, '
          f'{run.resolution} px (loaded in {loaded:.1f} s)', flush=True)
    engine = engine_lib.Engine(
        run, inversion.InversionConfig(steps=args.invert_steps, restarts=args.invert_restarts),
        tuning_file=os.path.join(cache, 'studio_generator_choices.json') if cache else None)
    compile_s = engine.warm_up()
    cached_after = compile_cache.entries(cache)
    print(f'compiled the model programs in {compile_s:.1f} s ' + (
        f'(compilation cache {cache}: {cached_before} programs before, {cached_after} now)'
        if cache else '(compilation cache off)'), flush=True)
    print('fastest generator per batch size: ' + ', '.join(
        f'{b}: {v["chosen"]}{" (remembered)" if v["remembered"] else ""}'
        for b, v in engine.implementations.items()), flush=True)
    limits = uploads.UploadLimits(int(args.max_upload_mb * uploads.MB), args.max_upload_pixels)
    runner = app_lib.inversion_runner(engine, args.max_jobs, max(8, args.max_jobs),
                                      args.job_timeout)
    startup = {'load_s': round(loaded, 2), 'compile_s': round(compile_s, 2),
               'cache_dir': cache, 'cached_programs_before': cached_before}
    app = app_lib.create_app(engine, limits, runner, startup=startup)
    url = url_of(sock)

    class Server(uvicorn.Server):
      async def startup(self, sockets=None):
        await super().startup(sockets)
        if self.started:
          startup['ready_s'] = round(time.perf_counter() - started, 2)
          print(f'productgan studio ready at {url} (start-up {startup["ready_s"]:.1f} s; '
                'Ctrl+C stops it)', flush=True)

    if args.host not in LOOPBACK:
      print(f'WARNING: listening on {args.host}: anyone who can reach this machine on port '
            f'{sock.getsockname()[1]} can use the studio and upload files. There is no '
            'authentication; use the default --host 127.0.0.1 unless you trust the network.',
            file=sys.stderr, flush=True)
    config = uvicorn.Config(app, log_level='info' if args.verbosity else 'warning',
                            access_log=bool(args.verbosity), timeout_graceful_shutdown=5)
    Server(config).run(sockets=[sock])
    return 0


@contextlib.contextmanager
def _stopped_by_signals():
  """Ctrl+C or SIGTERM end the studio through Python's exceptions (uvicorn first shuts down
  gracefully, then raises the signal again), so the temporary folder is removed on the way out."""
  def stop(signum, frame):
    raise SystemExit(0)

  saved = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
  try:
    yield
  finally:
    for s, handler in saved.items():
      signal.signal(s, handler)


def main(argv: Optional[Sequence[str]] = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  parser = build_parser()
  if '-h' in argv or '--help' in argv:
    parser.print_help()
    return 0
  try:
    args = parser.parse_args(argv)
    from gan.control import cli
    table = cli.exit_codes()
  except UsageError as e:
    print(f'{PROG}: error: {e}\n(see {PROG} --help)', file=sys.stderr)
    return errors.EXIT_USAGE
  try:
    with quiet.logs(args.verbosity):
      return serve(args)
  except UsageError as e:
    print(f'{PROG}: error: {e}', file=sys.stderr)
    return errors.EXIT_USAGE
  except errors.kinds(table) as e:
    return errors.report(PROG, e, table)
