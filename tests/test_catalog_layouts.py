"""Catalogue builder: real layouts (Kaggle styles.csv), --min-count, non-square photos, progress,
interruption safety and flat memory (gan.data.catalog and its catalog_* modules)."""
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
from PIL import Image
import pytest

from gan.data import catalog
from gan.data import catalog_decode
from gan.data import catalog_progress

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
R = 16


def _read_back(data_dir, name):
  """{split: [(image, {feature: value name})]} of a built catalogue, read through TFDS."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = tfds.builder(name, data_dir=data_dir)
  names = [k for k in builder.info.features.keys() if k != 'image']
  out = {}
  for split in builder.info.splits:
    out[split] = [(ex['image'], {f: builder.info.features[f].int2str(ex[f]) for f in names})
                  for ex in tfds.as_numpy(builder.as_dataset(split=split))]
  return out


# ----------------------------------------------------------------------------- Kaggle layout

KAGGLE_HEADER = ('id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,'
                 'productDisplayName')
# id -> (articleType, baseColour, usage); every image is one solid grey level that encodes its id.
KAGGLE = {
    15970: ('Shirts', 'Navy Blue', 'Casual'), 39386: ('Jeans', 'Navy Blue', 'Casual'),
    59263: ('Watches', 'Black', 'Casual'), 21379: ('Track Pants', 'Black', 'Casual'),
    53759: ('Tshirts', 'Grey', 'Formal'), 1855: ('Tshirts', 'Grey', 'Formal'),
    30805: ('Shirts', 'Grey', 'Sports'),
}


def _grey(k):
  return 20 + 30 * k  # Distinct after JPEG.


def _make_kaggle(root):
  s = str(root)
  os.makedirs(f'{s}/images')
  rows = [KAGGLE_HEADER]
  for k, (i, (article, colour, usage)) in enumerate(KAGGLE.items()):
    Image.new('RGB', (60, 80), (_grey(k),) * 3).save(f'{s}/images/{i}.jpg', quality=95)
    name = f'"Brand {article}, {colour}"' if k % 2 else f'Brand {article}'  # Quoted comma.
    rows.append(f'{i},Men,Apparel,Topwear,{article},{colour},Fall,2011,{usage},{name}')
  rows.append('99999,Men,Apparel,Topwear,Shirts,Red,Fall,2011,Casual,No image')
  rows.append('12345,Men,Apparel,Topwear,Shirts,Red,Fall,2011,Casual,Unquoted, comma')
  with open(f'{s}/styles.csv', 'w') as f:
    f.write('\n'.join(rows) + '\n')
  return s


def _kaggle_args(source, out, *extra):
  return ['build', '--source', source, '--csv', f'{source}/styles.csv', '--id-column', 'id',
          '--path-template', 'images/{id}.jpg', '--attributes', 'articleType,baseColour,usage',
          '--data-dir', out, '--resolution', str(R), '--holdout', '0', '--workers', '1',
          *extra]


def test_kaggle_layout_with_min_count(tmp_path, capsys):
  source = _make_kaggle(tmp_path / 'fashion')
  out = str(tmp_path / 'tfds')
  assert catalog.main(_kaggle_args(source, out, '--name', 'fashion', '--min-count', '2')) == 0
  summary = capsys.readouterr().out
  with open(os.path.join(out, 'fashion', 'build_report.json')) as f:
    report = json.load(f)
  assert report['columns'] == {'article_type': 'articleType', 'base_colour': 'baseColour',
                               'usage': 'usage'}
  assert {s['path']: (s['reason'], s['row']) for s in report['skipped']} == {
      'images/99999.jpg': ('missing_file', 9), '12345': ('malformed_row', 10)}
  # Values in fewer than 2 images become 'other', and the summary says which.
  assert report['rare']['usage'] == {'Sports': 1} and report['rare']['base_colour'] == {}
  assert report['rare']['article_type'] == {'Jeans': 1, 'Track Pants': 1, 'Watches': 1}
  assert report['vocabulary']['usage'] == ['Casual', 'Formal', 'other']
  assert report['vocabulary']['article_type'] == ['Shirts', 'Tshirts', 'other']
  assert "folded into 'other'" in summary and 'usage: Sports (1)' in summary
  # Every stored label is the CSV row of that very image (identified by its grey level).
  ids = list(KAGGLE)
  rows = _read_back(out, 'fashion')['train']
  assert len(rows) == 7
  for image, labels in rows:
    k = int(np.argmin([abs(int(image[8, 8, 0]) - _grey(j)) for j in range(len(ids))]))
    article, colour, usage = KAGGLE[ids[k]]
    assert labels['base_colour'] == colour
    assert labels['article_type'] == (article if article in ('Shirts', 'Tshirts') else 'other')
    assert labels['usage'] == ('other' if usage == 'Sports' else usage)
    # 60x80 portrait padded: white side bands of (16 - 12) / 2 = 2 px.
    assert (image[:, :2] == 255).all() and (image[:, -2:] == 255).all()

  # Every process (every host of a run) numbers the attributes alike, whatever order TFDS reads
  # the features back in (it differs with the string hash seed).
  code = ('import sys; from gan import quiet; from gan.data import pipeline; '
          'print(",".join(pipeline.open_dataset("fashion", sys.argv[1]).vocabulary.names))')
  orders = {subprocess.run([sys.executable, '-c', code, out], capture_output=True, text=True,
                           check=True, cwd=REPO, env=dict(os.environ, PYTHONHASHSEED=str(seed))
                           ).stdout.strip().splitlines()[-1] for seed in range(3)}
  assert orders == {'article_type,base_colour,usage'}, orders

  # --drop-rare: the images with a rare value are skipped and named, no 'other' appears.
  report = catalog.build_catalog(source, out, csv=f'{source}/styles.csv', name='fashion_drop',
                                 resolution=R, holdout=0, workers=1, id_column='id',
                                 path_template='images/{id}.jpg',
                                 attributes=['articleType', 'baseColour', 'usage'],
                                 min_count=2, rare='drop')
  dropped = {s.path for s in report.skipped if s.reason == 'rare_value'}
  assert dropped == {'images/39386.jpg', 'images/59263.jpg', 'images/21379.jpg',
                     'images/30805.jpg'}
  assert report.vocabulary == {'article_type': ['Shirts', 'Tshirts'],
                               'base_colour': ['Grey', 'Navy Blue'],
                               'usage': ['Casual', 'Formal']}
  assert 'dropped' in report.summary() and 'rare_value: 4' in report.summary()


def test_csv_flag_errors_name_the_columns(tmp_path):
  source = _make_kaggle(tmp_path / 'fashion')
  cases = [(['--attributes', 'colour'], "--attributes 'colour' is not a column"),
           (['--id-column', 'sku'], "--id-column 'sku' is not a column"),
           (['--path-template', 'images/x.jpg'], 'has no {id}'),
           (['--path-template', 'images/{sku}.jpg'], "{sku} 'sku' is not a column")]
  for extra, message in cases:
    args = _kaggle_args(source, str(tmp_path / 'o'), '--name', 'x')
    for flag, value in zip(extra[::2], extra[1::2]):
      args[args.index(flag) + 1] = value
    with pytest.raises(catalog.CatalogError, match=re.escape(message)):
      catalog.build_catalog(**_api(args))
  with pytest.raises(catalog.CatalogError, match='pass --csv'):
    catalog.build_catalog(source, str(tmp_path / 'o'), attributes=['usage'])
  assert not os.path.exists(tmp_path / 'o')


def _api(args):
  """CLI args -> build_catalog kwargs (parsed by the real parser)."""
  a = catalog._parser().parse_args(args)
  return dict(source=a.source, data_dir=a.data_dir, csv=a.csv, name=a.name,
              resolution=a.resolution, holdout=a.holdout, workers=a.workers,
              id_column=a.id_column, path_template=a.path_template, attributes=a.attributes)


# ----------------------------------------------------------------------------- non-square


@pytest.mark.parametrize('fit', ['pad', 'crop'])
def test_portrait_and_landscape_photos(tmp_path, fit):
  source = tmp_path / 'src'
  for category, size, colour in (('portrait', (60, 80), (200, 0, 0)),
                                 ('landscape', (80, 60), (0, 0, 200))):
    (source / category).mkdir(parents=True)
    Image.new('RGB', size, colour).save(source / category / 'a.png')
  out = str(tmp_path / 'out')
  catalog.build_catalog(str(source), out, name='shapes', resolution=R, holdout=0, fit=fit,
                        workers=1)
  rows = _read_back(out, 'shapes')['train']
  assert len(rows) == 2
  for image, labels in rows:
    colour = (200, 0, 0) if labels['category'] == 'portrait' else (0, 0, 200)
    product = (image == colour).all(axis=-1)
    if fit == 'crop':
      assert product.all()
    elif labels['category'] == 'portrait':  # 12 px wide, 2 px white bands left and right.
      assert product[:, 2:14].all() and not product[:, :2].any() and not product[:, 14:].any()
      assert (image[:, :2] == 255).all()
    else:  # 12 px tall, white bands above and below.
      assert product[2:14].all() and not product[:2].any() and not product[14:].any()


# ----------------------------------------------------------------------------- progress


def test_progress_lines_have_rate_and_eta():
  assert catalog_progress.duration(3725) == '1h02m'
  assert catalog_progress.duration(187) == '3m07s'
  line = catalog_progress.line('decoding', 250, 1000, 5.0)
  assert line == 'decoding [#####...............]  25% 250/1,000  50/s  ETA 15s'
  assert catalog_progress.line('writing', 10, 10, 2.0).endswith('in 2s')
  now = [0.0]
  lines = []
  bar = catalog_progress.Progress('x', 100, lines.append, interval=1.0, clock=lambda: now[0])
  for _ in range(100):
    now[0] += 0.1
    bar.update()
  bar.close()
  assert 9 <= len(lines) <= 11 and lines[-1].startswith('x [####################] 100%')
  assert 'ETA' in lines[0]


def test_build_reports_progress(tmp_path):
  source = tmp_path / 'src'
  for i in range(6):
    (source / 'cat').mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), 30 * i, np.uint8)).save(source / 'cat' / f'{i}.png')
  lines = []
  catalog.build_catalog(str(source), str(tmp_path / 'out'), name='p', resolution=8, holdout=0,
                        workers=1, progress=lines.append, progress_interval=0.0)
  assert any(l.startswith('decoding [') and 'ETA' in l for l in lines)
  assert lines[-1].startswith('writing [####################] 100% 6/6')


# ----------------------------------------------------------------------------- streaming


def test_ordered_map_keeps_order_and_bounds_what_is_in_flight():
  import concurrent.futures  # pylint: disable=g-import-not-at-top
  in_flight, peak = [0], [0]

  def submit(fn, chunk):
    in_flight[0] += 1
    peak[0] = max(peak[0], in_flight[0])
    future = concurrent.futures.Future()
    future.set_result(fn(chunk))
    return future

  def fn(chunk):
    return [x * 2 for x in chunk]

  out = []
  for x in catalog_decode.ordered_map(fn, ([i, i + 1000] for i in range(500)), submit, 5):
    out.append(x)
    if len(out) % 2 == 0:
      in_flight[0] -= 1  # One chunk (two results) taken back.
  assert out == [v for i in range(500) for v in (2 * i, 2 * (i + 1000))]
  assert peak[0] <= 5


_BUILD_AND_MEASURE = textwrap.dedent('''
    import json, resource, sys
    from gan.data import catalog
    source, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    report = catalog.build_catalog(source, out, csv=f'{source}/first_{n}.csv', name='mem',
                                   resolution=64, holdout=0.1, workers=1)
    print(json.dumps(dict(images=report.num_images,
                          rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))
''')


def test_memory_stays_flat_over_a_growing_folder(tmp_path):
  """A small-scale experiments/benchmark_catalog.py: 1,000 images need about the memory of 200.

  Noise photos make ~12 KB PNGs at 64 px, so a builder holding every image (as the builder did
  before it streamed) needs ~26 MB more for 1,000 than for 200 (the PNGs and the
  serialized records); the streaming one holds a few hundred bytes per image.
  """
  source = tmp_path / 'src'
  (source / 'p').mkdir(parents=True)
  rng = np.random.default_rng(0)
  rows = ['path,category']
  for i in range(1000):
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), np.uint8)).save(
        source / 'p' / f'{i}.png', compress_level=1)
    rows.append(f'p/{i}.png,c{i % 4}')
  for n in (200, 1000):
    (source / f'first_{n}.csv').write_text('\n'.join(rows[:n + 1]) + '\n')
  rss = {}
  for n in (200, 1000):
    proc = subprocess.run([sys.executable, '-c', _BUILD_AND_MEASURE, str(source),
                           str(tmp_path / f'out{n}'), str(n)], capture_output=True, text=True,
                          timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result['images'] == n
    rss[n] = result['rss'] / 1024
  # Measured: +6 MiB streaming; +26 MiB for the builder before it streamed (it held the PNGs).
  assert rss[1000] - rss[200] < 15, rss


# ----------------------------------------------------------------------------- interruption


def _photos(root, n=12):
  for i in range(n):
    category = 'bag' if i % 2 else 'shoe'
    (root / category).mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((20, 20, 3), 5 * i, np.uint8)).save(root / category / f'{i}.png')
  return str(root)


def _shape(out, name):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  return tfds.builder(name, data_dir=out).info.features['image'].shape


def test_exception_mid_decode_leaves_old_dataset_and_no_leftovers(tmp_path, monkeypatch):
  source = _photos(tmp_path / 'src')
  out = str(tmp_path / 'out')
  catalog.build_catalog(source, out, name='cat', resolution=R, workers=1)
  calls = [0]
  real = catalog_decode.decode_file

  def dying(path, settings):
    calls[0] += 1
    if calls[0] == 5:
      raise KeyboardInterrupt('Ctrl-C')
    return real(path, settings)

  monkeypatch.setattr(catalog_decode, 'decode_file', dying)
  with pytest.raises(KeyboardInterrupt):
    catalog.build_catalog(source, out, name='cat', resolution=2 * R, workers=1)
  monkeypatch.undo()
  assert sorted(os.listdir(out)) == ['cat'] and _shape(out, 'cat') == (R, R, 3)
  catalog.build_catalog(source, out, name='cat', resolution=2 * R, workers=1)
  assert sorted(os.listdir(out)) == ['cat'] and _shape(out, 'cat') == (2 * R, 2 * R, 3)


_SLOW_BUILD = textwrap.dedent('''
    import signal, sys, time
    # A terminal's Ctrl-C: pytest-xdist workers ignore SIGINT, and an ignored SIGINT is inherited.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from gan.data import catalog, catalog_decode
    real = catalog_decode.Staged.append
    def slow(self, data):  # In the parent, while the workers keep decoding.
      time.sleep(0.3)
      return real(self, data)
    catalog_decode.Staged.append = slow
    sys.exit(catalog.main(sys.argv[1:]))
''')


def _start_slow_build(source, out, resolution):
  return subprocess.Popen(
      [sys.executable, '-c', _SLOW_BUILD, 'build', '--source', source, '--data-dir', out,
       '--name', 'cat', '--resolution', str(resolution), '--workers', '2'],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)


def _wait_for_staging(out, proc, timeout=240):
  """Waits until the build is decoding (its staging file exists; at 0.3 s an image it stays
  there for over 10 s), plus a second; returns its hidden work folder."""
  deadline = time.time() + timeout
  while time.time() < deadline:
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    for entry in os.listdir(out):
      if entry.startswith('.cat.building-') and os.path.exists(
          os.path.join(out, entry, 'staged.bin')):
        time.sleep(1.0)
        return os.path.join(out, entry)
    time.sleep(0.1)
  proc.kill()
  raise AssertionError('the build did not start staging images')


def _children(pid):
  out = []
  for entry in os.listdir('/proc'):
    try:
      with open(f'/proc/{entry}/stat') as f:
        if int(f.read().rsplit(')', 1)[1].split()[1]) == pid:
          out.append(int(entry))
    except (OSError, ValueError, IndexError):
      continue
  return out


def _running(pid):
  """Alive and not a zombie (a container's init may never reap the orphans it adopts)."""
  try:
    with open(f'/proc/{pid}/stat') as f:
      return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
  except OSError:
    return False


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='reads /proc')
def test_ctrl_c_and_kill_never_expose_a_half_built_dataset(tmp_path):
  source = _photos(tmp_path / 'src', n=40)
  out = str(tmp_path / 'out')
  catalog.build_catalog(source, out, name='cat', resolution=R, workers=1)

  # Ctrl-C (SIGINT) while the workers decode: exit 130, the old dataset kept, nothing left over.
  proc = _start_slow_build(source, out, 2 * R)
  _wait_for_staging(out, proc)
  proc.send_signal(signal.SIGINT)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == catalog.EXIT_INTERRUPTED, err[-3000:]
  assert 'interrupted: nothing was installed' in err and 'Traceback' not in err
  assert 'Writing' not in err  # Stopped while decoding.
  assert sorted(os.listdir(out)) == ['cat'] and _shape(out, 'cat') == (R, R, 3)

  # SIGKILL: the hidden work folder stays, TFDS still sees only the old dataset; the next
  # build removes the leftovers and installs the new one.
  proc = _start_slow_build(source, out, 2 * R)
  work = _wait_for_staging(out, proc)
  workers = _children(proc.pid)
  assert len(workers) >= 2  # The two workers (and multiprocessing's resource tracker).
  proc.kill()
  proc.communicate(timeout=60)
  assert os.path.isdir(work) and _shape(out, 'cat') == (R, R, 3)
  time.sleep(1.0)
  assert not [pid for pid in workers if _running(pid)]  # No orphan workers left decoding.
  report = catalog.build_catalog(source, out, name='cat', resolution=2 * R, workers=1)
  assert sorted(os.listdir(out)) == ['cat'] and _shape(out, 'cat') == (2 * R, 2 * R, 3)
  assert report.num_images == 40


def test_parallel_decoding_matches_in_process(tmp_path):
  """Worker processes give the same staged images, skips and first-copy-wins as one process."""
  source = _photos(tmp_path / 'src', n=36)
  (tmp_path / 'src' / 'bag' / 'bad.png').write_bytes(b'garbage')
  (tmp_path / 'src' / 'bag' / 'copy.png').write_bytes((tmp_path / 'src' / 'bag' / '1.png')
                                                       .read_bytes())
  from gan.data import catalog_scan  # pylint: disable=g-import-not-at-top
  candidates, _, _ = catalog_scan.scan_folders(source, str(tmp_path / 'out'))
  settings = catalog_decode.Settings(R, 'pad', (255, 255, 255))
  results = {}
  for workers in (1, 2):
    staged = catalog_decode.Staged(str(tmp_path / f'staged{workers}.bin'))
    decoded = catalog_decode.decode_all(candidates, source, settings, staged, ['category'],
                                        workers=workers)
    results[workers] = (decoded.kept, [(s.path, s.reason, s.detail) for s in decoded.skipped],
                        [staged.read(i) for i in range(len(decoded.kept))])
    staged.close()
  assert results[1] == results[2]
  assert sorted(r[:2] for r in results[2][1]) == [('bag/bad.png', 'corrupt'),
                                                  ('bag/copy.png', 'duplicate')]
  assert len(results[2][0]) == 36
