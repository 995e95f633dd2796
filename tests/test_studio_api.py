"""The studio's JSON API (gan/studio) on the tiny trained run, through FastAPI's TestClient:
every endpoint, every error, a storm of bad requests, bounded jobs, concurrent model calls."""
import base64
import io
import itertools
import re
import struct
import threading
import time
import zlib

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from gan.control import generation, inversion, loading, output
from gan.studio import app as app_lib, engine as engine_lib, jobs as jobs_lib, tuning, uploads
from gan.studio.main import main as studio_main

LIMITS = uploads.UploadLimits(max_bytes=200_000, max_pixels=1_000_000)


@pytest.fixture(scope='module')
def run(trained_run_dir):
  return loading.load_run(trained_run_dir, 'latest')


@pytest.fixture(scope='module')
def engine(run):
  engine = engine_lib.Engine(run, inversion.InversionConfig(steps=8, restarts=2), chunk_steps=2)
  engine.warm_up()
  return engine


@pytest.fixture(scope='module')
def client(engine):
  runner = app_lib.inversion_runner(engine, max_waiting=2, max_kept=3, timeout_s=120)
  with TestClient(app_lib.create_app(engine, LIMITS, runner)) as client:
    yield client


def decode(url):
  assert url.startswith('data:image/png;base64,')
  return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(',', 1)[1]))))


def png(array):
  buffer = io.BytesIO()
  Image.fromarray(np.asarray(array, np.uint8)).save(buffer, format='PNG')
  return buffer.getvalue()


def png_header(width, height):
  """A valid PNG that claims width x height pixels in a few hundred bytes (a decompression bomb
  as far as its header goes)."""
  def chunk(kind, data):
    return (struct.pack('>I', len(data)) + kind + data
            + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))
  return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0))
          + chunk(b'IDAT', zlib.compress(b'\0' * 1000)) + chunk(b'IEND', b''))


def ok(response, status=200):
  assert response.status_code == status, response.text
  return response.json()


def wait_for(client, job_id, timeout=240):
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    job = ok(client.get(f'/api/jobs/{job_id}'))
    if job['state'] in ('done', 'failed'):
      return job
    time.sleep(0.1)
  raise AssertionError(f'job {job_id} did not finish: {job}')


# ---- The page ----

def test_page_docs_and_static_files_work_offline(client):
  page = client.get('/')
  assert page.status_code == 200 and 'text/html' in page.headers['content-type']
  assert "default-src 'self'" in page.headers['content-security-policy']
  for name, kind in (('studio.js', 'javascript'), ('studio.css', 'text/css')):
    response = client.get(f'/static/{name}')
    assert response.status_code == 200 and kind in response.headers['content-type']
    assert name in page.text
    # Nothing is loaded from elsewhere: no http(s) or protocol-relative URL in the shipped files.
    assert not re.search(r'https?://|url\(\s*["\']?//', response.text), name
  assert not re.search(r'(src|href)=["\']?(https?:)?//', page.text)
  docs = client.get('/docs')
  assert docs.status_code == 200
  for endpoint in ('/api/info', '/api/generate', '/api/sweep', '/api/edit', '/api/interpolate',
                   '/api/parse', '/api/photos', '/api/jobs/{job_id}', 'GenerateRequest'):
    assert endpoint in docs.text, endpoint
  assert not re.search(r'(src|href)=["\']?(https?:)?//', docs.text)
  assert '/api/generate' in ok(client.get('/openapi.json'))['paths']


def test_info_describes_the_run(client, engine, run):
  info = ok(client.get('/api/info'))
  assert info['step'] == 4 and info['resolution'] == 16
  assert [a['name'] for a in info['attributes']] == list(run.vocabulary.names)
  assert info['attributes'][1]['values'] == list(run.vocabulary.values('colour'))
  assert info['count'] == {'min': 1, 'max': 64, 'default': 16}
  assert len(info['directions']) == 6
  eigenvalues = [d['eigenvalue'] for d in info['directions']]
  assert eigenvalues == sorted(eigenvalues, reverse=True)
  assert info['upload']['max_bytes'] == LIMITS.max_bytes
  assert info['jobs'] == {'max_waiting': 2, 'max_kept': 3, 'timeout_s': 120.0}
  assert info['warm_up_seconds'] > 0


# ---- Generate, sweep, edit, interpolate, parse ----

def test_generate_matches_gan_sample(client, run):
  """Padded to a compiled batch size, the studio still draws exactly what gan.sample draws."""
  body = {'attributes': {'colour': 'navy', 'pattern': 'any'}, 'seed': 5, 'count': 3,
          'truncation': 0.7}
  data = ok(client.post('/api/generate', json=body))
  products = data['products']
  assert len(products) == 3 and data['ms'] > 0
  assert [p['index'] for p in products] == [0, 1, 2]
  assert all(p['attributes']['colour'] == 'navy' and p['attributes']['pattern'] != 'any'
             for p in products)
  expected, _, labels = generation.sample(run, {'colour': 'navy'}, num=3, seed=5, truncation=0.7)
  got = np.stack([decode(p['image']) for p in products])
  assert got.shape == (3, 16, 16, 3)
  assert np.abs(got.astype(int) - output.as_uint8(expected).astype(int)).max() <= 1
  assert [run.vocabulary.decode(l) for l in labels] == [p['attributes'] for p in products]
  again = ok(client.post('/api/generate', json=body))['products']
  assert [p['image'] for p in again] == [p['image'] for p in products]
  # Count 40 is padded to the 64 bucket; its first three are the same products.
  many = ok(client.post('/api/generate', json=dict(body, count=40)))['products']
  assert len(many) == 40
  assert np.abs(np.stack([decode(p['image']) for p in many[:3]]).astype(int)
                - got.astype(int)).max() <= 1


def _product(client, seed=2, count=2, attributes=None):
  return ok(client.post('/api/generate', json={'seed': seed, 'count': count,
                                               'attributes': attributes or {}}))['products']


def _ref(product):
  return {k: product[k] for k in ('seed', 'index', 'truncation', 'attributes')}


def test_sweep_shows_the_product_in_every_value(client, run):
  product = _product(client)[1]
  data = ok(client.post('/api/sweep', json={'product': _ref(product), 'attribute': 'color'}))
  assert data['attribute'] == 'colour'
  colours = list(run.vocabulary.values('colour'))
  assert [p['attributes']['colour'] for p in data['products']] == colours
  for p in data['products']:
    assert (p['seed'], p['index']) == (product['seed'], product['index'])
    assert p['attributes']['category'] == product['attributes']['category']
  own = data['products'][colours.index(product['attributes']['colour'])]
  assert np.abs(decode(own['image']).astype(int) - decode(product['image']).astype(int)).max() <= 1


def test_edit_moves_the_product_along_sefa_directions(client):
  product = _product(client)[0]
  unchanged = ok(client.post('/api/edit', json={'product': _ref(product), 'strengths': []}))
  assert np.abs(decode(unchanged['image']).astype(int)
                - decode(product['image']).astype(int)).max() <= 1
  moved = [decode(ok(client.post('/api/edit', json={'product': _ref(product),
                                                    'strengths': [s, 0, 0.5]}))['image'])
           for s in (-2.0, 2.0)]
  assert np.abs(moved[0].astype(int) - moved[1].astype(int)).mean() > 1


def test_interpolate_goes_from_one_product_to_the_other(client):
  a, b = _product(client, seed=3, count=2)
  images = ok(client.post('/api/interpolate', json={'product': _ref(a), 'to': _ref(b),
                                                    'frames': 5}))['images']
  assert len(images) == 5
  frames = np.stack([decode(u) for u in images]).astype(int)
  # The ends are the two products (mixed embeddings at t=0 and 1 are the plain ones).
  assert np.abs(frames[0] - decode(a['image'])).max() <= 2
  assert np.abs(frames[-1] - decode(b['image'])).max() <= 2
  assert np.abs(frames[2] - frames[0]).mean() > 0


def test_parse_fills_attributes_and_reports_unknown_words(client):
  parsed = ok(client.post('/api/parse', json={'text': 'crimson striped handbags zzqx'}))
  assert parsed['assignments'] == {'category': 'handbag', 'colour': 'red', 'pattern': 'striped'}
  assert parsed['unknown'] == ['zzqx'] and parsed['notes']
  assert ok(client.post('/api/parse', json={'text': 'navy sneakers'}))['assignments'] == {
      'category': 'sneaker', 'colour': 'navy'}


# ---- Photos: upload, background inversion, variants ----

def test_photo_inversion_job_and_variants(client, run):
  z = np.asarray(run.generate(np.random.default_rng(0).normal(size=(1, run.latent_dim)),
                              run.vocabulary.encode({'category': 'mug'})[None]))
  photo = np.asarray(Image.fromarray(output.as_uint8(z)[0]).resize((48, 40)))  # Not square.
  started = ok(client.post('/api/photos?known=category=mug', content=png(photo),
                           headers={'content-type': 'image/png'}), 202)
  assert started['state'] in ('queued', 'running') and started['result'] is None
  # While it runs, the model still answers (the lock is yielded between chunks).
  _product(client, seed=9, count=1)
  job = wait_for(client, started['job'])
  assert job['state'] == 'done' and job['progress'] == 1.0, job
  result = job['result']
  assert result['attributes']['category'] == 'mug' and result['known'] == {'category': 'mug'}
  assert decode(result['photo']).shape == decode(result['reconstruction']).shape == (16, 16, 3)
  assert result['psnr'] > 5
  one = ok(client.post(f'/api/jobs/{job["job"]}/variants',
                       json={'attributes': {'colour': 'navy'}}))['variants']
  assert len(one) == 1 and one[0]['attributes']['colour'] == 'navy'
  swept = ok(client.post(f'/api/jobs/{job["job"]}/variants',
                         json={'attributes': {'colour': 'navy'}, 'sweep': 'pattern'}))['variants']
  assert [v['attributes']['pattern'] for v in swept] == list(run.vocabulary.values('pattern'))
  assert all(v['attributes']['colour'] == 'navy' for v in swept)
  assert all(v['attributes']['category'] == 'mug' for v in swept)


# ---- Every error: a 4xx with words, never a traceback ----

BAD_UPLOADS = [
    (b'', 400, 'empty'),
    (b'this is not an image at all', 415, 'not an image'),
    (png(np.random.default_rng(0).integers(0, 255, (32, 32, 3)))[:1500], 400, 'ends early'),
    (png_header(5000, 5000), 413, '1,000,000 pixels'),
    (png_header(20000, 20000), 413, 'too many pixels'),
    (b'\0' * (LIMITS.max_bytes + 1), 413, 'larger than the limit'),
]

BAD_REQUESTS = [
    ('post', '/api/generate', {'count': 0}, 422, ['count', 'greater than or equal to 1']),
    ('post', '/api/generate', {'count': 65}, 422, ['count', 'less than or equal to 64']),
    ('post', '/api/generate', {'count': 'many'}, 422, ['count', 'valid integer']),
    ('post', '/api/generate', {'seed': -1}, 422, ['seed']),
    ('post', '/api/generate', {'truncation': 9}, 422, ['truncation', '4']),
    ('post', '/api/generate', {'colour': 'red'}, 422, ['colour', 'Extra inputs']),
    ('post', '/api/generate', {'attributes': {'shape': 'round'}}, 400,
     ["Unknown attribute 'shape'", 'category, colour, pattern']),
    ('post', '/api/generate', {'attributes': {'colour': 'mauve'}}, 400,
     ["Unknown value 'mauve'", 'navy', '"any"']),
    ('post', '/api/generate', {'attributes': {'colour': 3}}, 422, ['attributes.colour']),
    ('post', '/api/generate', '{"seed": ', 422, ['not valid JSON']),
    ('post', '/api/generate', [1, 2], 422, ['JSON object']),
    ('post', '/api/generate', 'x' * 70_000, 413, ['larger than 65,536 bytes']),
    ('post', '/api/sweep', {'product': {'seed': 1}, 'attribute': 'size'}, 400,
     ["Unknown attribute 'size'"]),
    ('post', '/api/sweep', {'attribute': 'colour'}, 422, ['product', 'Field required']),
    ('post', '/api/edit', {'product': {'seed': 1}, 'strengths': [5.0]}, 400,
     ['strengths[0]', 'between -3.0 and 3.0']),
    ('post', '/api/edit', {'product': {'seed': 1}, 'strengths': [0.0] * 7}, 400,
     ['6 edit directions']),
    ('post', '/api/edit', {'product': {'seed': 1, 'index': -3}}, 422, ['product.index']),
    ('post', '/api/interpolate', {'product': {'seed': 1}, 'to': {'seed': 2}, 'frames': 1}, 422,
     ['frames']),
    ('post', '/api/parse', {'text': 'x' * 501}, 422, ['text', '500']),
    ('get', '/api/nothing', None, 404, ['/api/nothing', '/docs']),
    ('get', '/api/generate', None, 405, ['GET is not allowed']),
    ('get', '/api/jobs/0123456789abcdef', None, 404, ['No job']),
    ('post', '/api/jobs/0123456789abcdef/variants', {}, 404, ['No job']),
    ('post', '/api/photos?known=shape=round', png(np.zeros((8, 8, 3))), 400,
     ["Unknown attribute 'shape'"]),
    ('post', '/api/photos?known=category', png(np.zeros((8, 8, 3))), 400, ['attribute=value']),
] + [('post', '/api/photos', data, status, [words]) for data, status, words in BAD_UPLOADS]


def _send(client, method, path, body):
  if body is None:
    return getattr(client, method)(path)
  if isinstance(body, (bytes, str)):
    return client.post(path, content=body, headers={'content-type': 'application/json'
                                                   if isinstance(body, str) else 'image/png'})
  return client.post(path, json=body)


@pytest.mark.parametrize('method, path, body, status, words', BAD_REQUESTS,
                         ids=[f'{r[1]}-{i}' for i, r in enumerate(BAD_REQUESTS)])
def test_bad_request_is_a_4xx_that_says_what_is_valid(client, method, path, body, status, words):
  response = _send(client, method, path, body)
  assert response.status_code == status, response.text
  message = response.json()['error']
  for word in words:
    assert word in message, (word, message)
  assert 'Traceback' not in message


def test_declared_content_length_over_the_limit_is_refused_unread(client):
  response = client.post('/api/photos', content=b'x' * 10,
                         headers={'content-length': str(LIMITS.max_bytes + 1)})
  assert response.status_code == 413 and 'larger than the limit' in response.json()['error']


def test_hundreds_of_bad_requests_then_good_ones_still_work(client):
  before = _product(client, seed=4, count=2)
  for method, path, body, status, _ in itertools.islice(itertools.cycle(BAD_REQUESTS), 300):
    assert _send(client, method, path, body).status_code == status
  assert _product(client, seed=4, count=2) == before
  assert ok(client.get('/api/info'))['step'] == 4


# ---- Bounds and serialisation ----

def test_engine_serialises_concurrent_calls(engine):
  """Threads calling the engine at once get exactly the sequential answers."""
  product = engine.product(6, 1, 0.7, {'colour': 'red', 'category': 'mug', 'pattern': 'solid'})
  calls = [lambda: engine.generate({'pattern': 'dotted'}, 3, 16, 0.7)[0],
           lambda: engine.edit(product, [1.0, -1.0]),
           lambda: engine.sweep(product, 'pattern')[0],
           lambda: engine.generate({}, 8, 5, 0.0)[0]]
  expected = [call() for call in calls]
  results, errors = {}, []

  def worker(i):
    try:
      for _ in range(3):
        results.setdefault(i, []).append(calls[i % len(calls)]())
    except Exception as e:  # pylint: disable=broad-except
      errors.append(e)

  threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert not errors
  for i, got in results.items():
    for image in got:
      np.testing.assert_array_equal(image, expected[i % len(calls)])


def test_fair_lock_serves_in_arrival_order_and_yields():
  lock, order = engine_lib.FairLock(), []
  lock.acquire()
  waiters = []
  for i in range(3):
    t = threading.Thread(target=lambda i=i: (lock.acquire(), order.append(i), lock.release()))
    t.start()
    waiters.append(t)
    time.sleep(0.05)  # Arrive in order.
  lock.yield_()  # The long job lets the three waiting requests go first...
  order.append('job')
  lock.release()
  for t in waiters:
    t.join()
  assert order == [0, 1, 2, 'job']


def test_jobs_are_bounded_in_number_and_time():
  gate = threading.Event()

  def work(payload, progress):
    if payload == 'slow':
      while True:
        progress(0.5)
        time.sleep(0.02)
    if payload == 'bad':
      raise engine_lib.InputError('bad photo')
    if payload == 'bug':
      raise RuntimeError('oops')
    gate.wait(10)
    progress(1.0)
    return payload

  runner = jobs_lib.JobRunner(work, max_waiting=2, max_kept=3, timeout_s=0.3,
                              explain=lambda e: str(e) if isinstance(e, engine_lib.InputError)
                              else None)
  try:
    first, second = runner.submit('a'), runner.submit('b')
    with pytest.raises(jobs_lib.JobsBusy, match='2 photos are already being inverted'):
      runner.submit('c')
    gate.set()
    for job in (first, second):
      while job.in_flight:
        time.sleep(0.01)
    assert (first.state, first.result, second.result) == ('done', 'a', 'b')
    slow = runner.submit('slow')
    while slow.in_flight:
      time.sleep(0.01)
    assert slow.state == 'failed' and 'longer than its limit of 0.3 s' in slow.error
    for payload, words in (('bad', 'bad photo'), ('bug', 'RuntimeError: oops')):
      job = runner.submit(payload)
      while job.in_flight:
        time.sleep(0.01)
      assert job.state == 'failed' and words in job.error
    kept = runner.jobs()  # Only the last 3 are kept; the oldest are forgotten first.
    assert len(kept) == 3 and slow.id in kept and first.id not in kept and second.id not in kept
    with pytest.raises(KeyError, match='keeps the last 3 jobs'):
      runner.get(first.id)
  finally:
    runner.close()
  with pytest.raises(jobs_lib.JobsBusy, match='shutting down'):
    runner.submit('a')


def test_variants_of_an_unfinished_job_are_refused(engine):
  gate = threading.Event()
  runner = jobs_lib.JobRunner(lambda payload, progress: gate.wait(10), max_waiting=1)
  with TestClient(app_lib.create_app(engine, LIMITS, runner)) as client:
    job = runner.submit('x')
    response = client.post(f'/api/jobs/{job.id}/variants', json={})
    assert response.status_code == 409 and 'variants need a finished job' in response.json()['error']
    busy = client.post('/api/photos', content=png(np.zeros((8, 8, 3))))
    assert busy.status_code == 429 and 'wait until one has finished' in busy.json()['error']
    gate.set()


# ---- The command ----

@pytest.mark.parametrize('args, words', [
    (['--port', '70000'], 'must be in 0..65535'),  # The last --port wins.
    (['--max-jobs', '0'], '--max-jobs must be >= 1'),
    (['--checkpoint', 'newest'], 'best, latest or a step number'),
])
def test_command_refuses_bad_flags_in_words(trained_run_dir, capsys, args, words):
  assert studio_main([f'--workdir={trained_run_dir}', '--port', '0'] + args) == 2
  err = capsys.readouterr().err
  assert words in err and 'Traceback' not in err


def test_command_refuses_a_missing_workdir_and_a_taken_port(tmp_path, capsys, trained_run_dir):
  assert studio_main([f'--workdir={tmp_path / "nothing"}', '--port', '0']) == 2
  assert 'config.json' in capsys.readouterr().err
  import socket
  with socket.socket() as taken:
    taken.bind(('127.0.0.1', 0))
    taken.listen()
    port = taken.getsockname()[1]
    assert studio_main([f'--workdir={trained_run_dir}', '--port', str(port)]) == 2
  assert f'cannot listen on 127.0.0.1:{port}' in capsys.readouterr().err


def test_warm_up_picks_a_checked_generator_implementation_per_batch_size(engine, run, monkeypatch):
  assert set(engine.implementations) == set(engine.buckets)
  for choice in engine.implementations.values():
    assert choice['chosen'] in choice['ms'] and choice['ms'][choice['chosen']] is not None
    assert set(choice['ms']) >= {'run', 'gemm', 'toom2', 'conv_transpose'}
    assert not choice['remembered']

  class Off:
    """A 'faster' implementation that draws other images: never chosen."""
    def apply(self, *args, **kwargs):
      return run.generator.apply(*args, **kwargs) + 0.1

  monkeypatch.setattr(tuning, 'candidates', lambda g: {'run': g, 'off': Off()})
  z = np.zeros((1, run.latent_dim), np.float32)
  name, _, seconds = tuning.fastest(run.generator, run.g_variables, z,
                                    run.vocabulary.unspecified()[None])
  assert name == 'run' and seconds['off'] is None


def test_generator_choices_are_remembered_and_still_checked(run, tmp_path):
  path = str(tmp_path / 'choices.json')
  first = engine_lib.Engine(run, inversion.InversionConfig(steps=2, restarts=1),
                            buckets=(1, 16), tuning_file=path)
  first.warm_up()
  second = engine_lib.Engine(run, inversion.InversionConfig(steps=2, restarts=1),
                             buckets=(1, 16), tuning_file=path)
  second.warm_up()
  for bucket in (1, 16):
    assert second.implementations[bucket] == {
        'chosen': first.implementations[bucket]['chosen'], 'ms': None, 'remembered': True}
  # A remembered name that no longer exists (or draws other images) is measured again.
  choices = tuning.Choices(path)
  for key in list(choices.data):
    choices.put(key, 'no_such_implementation')
  third = engine_lib.Engine(run, inversion.InversionConfig(steps=2, restarts=1),
                            buckets=(1, 16), tuning_file=path)
  third.warm_up()
  assert not any(v['remembered'] for v in third.implementations.values())
  assert 'no_such_implementation' not in tuning.Choices(path).data.values()
