"""Tests for gan.data.images (decoding/fitting) and gan.data.catalog (bring-your-own catalogue)."""
import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
from PIL import Image
import pytest

from gan.data import catalog
from gan.data import images

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
R = 16
RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


# ----------------------------------------------------------------------------- file makers


def _noise(seed, h=30, w=40):
  return np.random.RandomState(seed).randint(0, 256, (h, w, 3), np.uint8)


def _save(path, image, fmt=None, **kwargs):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  image.save(path, fmt, **kwargs)
  return path


def _encoded(image, fmt, **kwargs):
  buffer = io.BytesIO()
  image.save(buffer, fmt, **kwargs)
  return buffer.getvalue()


def _write(path, data: bytes):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:
    f.write(data)
  return path


def _wide_red():
  return Image.new('RGB', (80, 20), RED)


def _png16(top=65535, bottom=25700):  # 25700 / 257 == 100.
  a = np.full((20, 20), top, np.uint16)
  a[10:] = bottom
  return Image.fromarray(a)


def _palette_transparent():
  image = Image.new('P', (20, 20), 0)
  image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
  image.paste(1, (10, 0, 20, 20))  # Right half index 1 (green); left half index 0 (clear).
  return image


def _gif_frames():
  return Image.new('RGB', (24, 24), RED), Image.new('RGB', (24, 24), BLUE)


def _exif6_jpeg():
  """Stored 40x20: left half red, right half blue; EXIF says 'rotate 90 degrees clockwise'."""
  a = np.zeros((20, 40, 3), np.uint8)
  a[:, :20] = RED
  a[:, 20:] = BLUE
  exif = Image.Exif()
  exif[0x0112] = 6
  return _encoded(Image.fromarray(a), 'JPEG', quality=95, exif=exif.tobytes())


def _close(pixel, colour, tol=12):
  return np.abs(np.asarray(pixel, int) - np.asarray(colour, int)).max() <= tol


# ----------------------------------------------------------------------------- images.py


def test_wide_image_is_padded_not_stretched(tmp_path):
  path = _save(str(tmp_path / 'wide.png'), _wide_red())
  out = images.load_image(path, R)
  assert out.shape == (R, R, 3) and out.dtype == np.uint8
  red_rows = [i for i in range(R) if (out[i] == RED).all()]
  white_rows = [i for i in range(R) if (out[i] == WHITE).all()]
  assert red_rows == [6, 7, 8, 9]  # 80x20 -> 16x4, centred.
  assert white_rows == [0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15]
  # Crop keeps the centre square: all red. A given background colour fills the bands.
  assert (images.load_image(path, R, fit='crop') == RED).all()
  grey = images.load_image(path, R, background=(128, 128, 128))
  assert (grey[0] == 128).all() and (grey[8] == RED).all()


def test_tall_image_is_padded_left_and_right(tmp_path):
  path = _save(str(tmp_path / 'tall.png'), Image.new('RGB', (20, 80), GREEN))
  out = images.load_image(path, R)
  assert (out[:, :6] == WHITE).all() and (out[:, 6:10] == GREEN).all()
  assert (out[:, 10:] == WHITE).all()


def test_auto_background_uses_border_median(tmp_path):
  a = np.full((20, 40, 3), 200, np.uint8)  # Grey studio backdrop, dark product in the middle.
  a[5:15, 15:25] = 20
  out = images.load_image(_save(str(tmp_path / 'g.png'), Image.fromarray(a)), R,
                          background='auto')
  assert (out[0] == 200).all() and (out[-1] == 200).all()
  assert out[8, 8].max() < 60


def test_exif_orientation_is_applied(tmp_path):
  path = _write(str(tmp_path / 'exif6.jpg'), _exif6_jpeg())
  out = images.load_image(path, R)
  # Upright it is 20 wide x 40 tall, red on top: 8x16 centred, white side bands.
  assert (out[:, :3] == 255).all() and (out[:, 13:] == 255).all()
  assert _close(out[3, 8], RED, 30) and _close(out[12, 8], BLUE, 30)


@pytest.mark.parametrize('kind', ['jpeg', 'png_rgb', 'png16', 'palette_t', 'webp', 'gif',
                                  'gray', 'cmyk', 'rgba', 'la'])
def test_formats_decode_to_rgb(tmp_path, kind):
  p = str(tmp_path / 'img')
  if kind == 'jpeg':
    path = _save(p + '.jpg', Image.new('RGB', (30, 30), BLUE), 'JPEG', quality=95)
    expect = {(8, 8): BLUE}
  elif kind == 'png_rgb':
    path = _save(p + '.png', Image.new('RGB', (30, 30), GREEN))
    expect = {(8, 8): GREEN}
  elif kind == 'png16':
    image = _png16()
    assert image.mode == 'I;16'
    path = _save(p + '.png', image)
    assert Image.open(path).mode.startswith('I')  # Really stored as 16-bit.
    expect = {(2, 8): (255,) * 3, (13, 8): (100,) * 3}  # Scaled by 255/65535, not clipped.
  elif kind == 'palette_t':
    path = _save(p + '.png', _palette_transparent(), transparency=0)
    expect = {(8, 2): WHITE, (8, 13): GREEN}  # Transparent left half composited on white.
  elif kind == 'webp':
    path = _save(p + '.webp', Image.new('RGB', (30, 30), RED), 'WEBP', lossless=True)
    expect = {(8, 8): RED}
  elif kind == 'gif':
    first, second = _gif_frames()
    path = _save(p + '.gif', first, save_all=True, append_images=[second], duration=100)
    assert Image.open(path).n_frames == 2
    expect = {(8, 8): RED}  # First frame.
  elif kind == 'gray':
    path = _save(p + '.jpg', Image.new('L', (30, 30), 90), 'JPEG', quality=95)
    expect = {(8, 8): (90, 90, 90)}
  elif kind == 'cmyk':
    path = _save(p + '.jpg', Image.new('CMYK', (30, 30), (0, 255, 255, 0)), 'JPEG', quality=95)
    assert Image.open(path).mode == 'CMYK'
    expect = {(8, 8): RED}
  elif kind == 'rgba':
    path = _save(p + '.png', Image.new('RGBA', (30, 30), (255, 0, 0, 128)))
    expect = {(8, 8): (255, 127, 127)}  # Half-transparent red over white.
  else:  # 'la'
    path = _save(p + '.png', Image.new('LA', (30, 30), (0, 0)))
    expect = {(8, 8): WHITE}  # Fully transparent black -> white.
  out = images.load_image(path, R)
  assert out.shape == (R, R, 3) and out.dtype == np.uint8
  for (y, x), colour in expect.items():
    assert _close(out[y, x], colour, 6), (kind, out[y, x], colour)


def test_bad_files_raise_image_error_with_reason(tmp_path):
  jpeg = _encoded(Image.fromarray(_noise(0)), 'JPEG')
  png = _encoded(Image.fromarray(_noise(1)), 'PNG')
  cases = {
      'random.jpg': (np.random.RandomState(2).bytes(600), 'corrupt'),
      'random.bin': (np.random.RandomState(3).bytes(600), 'not_an_image'),
      'half.jpg': (jpeg[:len(jpeg) // 2], 'truncated'),
      'half.png': (png[:len(png) // 2], 'truncated'),
      'empty.png': (b'', 'empty'),
      'notes.txt': (b'not a picture\n', 'not_an_image'),
  }
  for filename, (data, reason) in cases.items():
    with pytest.raises(images.ImageError) as info:
      images.load_image(_write(str(tmp_path / filename), data), R)
    assert info.value.reason == reason, filename
  with pytest.raises(images.ImageError) as info:
    images.load_image(str(tmp_path / 'missing.png'), R)
  assert info.value.reason == 'unreadable'


def test_bad_arguments(tmp_path):
  path = _save(str(tmp_path / 'a.png'), Image.new('RGB', (20, 20), RED))
  for resolution in (12, 4, 0, -16, 16.0, True):
    with pytest.raises(ValueError, match='power of two'):
      images.load_image(path, resolution)
  with pytest.raises(ValueError, match='crop, pad'):
    images.load_image(path, R, fit='stretch')
  with pytest.raises(ValueError, match='background'):
    images.load_image(path, R, background=(300, 0, 0))


# ----------------------------------------------------------------------------- splitting


def test_assign_splits_is_stratified_and_deterministic():
  strata = ['a'] * 50 + ['b'] * 30 + ['c'] * 20 + ['solo']
  s0 = catalog.assign_splits(strata, 0.2, seed=0)
  assert s0 == catalog.assign_splits(strata, 0.2, seed=0)
  assert s0 != catalog.assign_splits(strata, 0.2, seed=1)
  test = [k for k, s in zip(strata, s0) if s == 'test']
  assert len(test) == 20
  assert {k: test.count(k) for k in 'abc'} == {'a': 10, 'b': 6, 'c': 4}
  assert s0[-1] == 'train'  # A stratum of one stays in train.
  assert catalog.assign_splits(strata, 0.0, 0) == ['train'] * len(strata)
  # Small sets still hold one image out, and keep one in train per stratum.
  assert catalog.assign_splits(['a', 'a', 'b'], 0.1, 0).count('test') == 1
  assert catalog.assign_splits(['a', 'b'], 0.5, 0) == ['train', 'train']


# ----------------------------------------------------------------------------- catalogue


GOOD = {  # Relative path -> category, all distinct pixels.
    'bag/red_wide.png': 'bag', 'bag/a_photo.jpg': 'bag', 'bag/png16.png': 'bag',
    'bag/palette_t.png': 'bag', 'bag/lossy.webp': 'bag', 'bag/anim.gif': 'bag',
    'bag/gray.jpg': 'bag', 'shoe/cmyk.jpg': 'shoe', 'shoe/rgba.png': 'shoe',
    'shoe/tall.png': 'shoe', 'shoe/exif6.jpg': 'shoe', 'shoe/nested/deep.png': 'shoe',
    'mug/a.png': 'mug', 'mug/b.png': 'mug', 'mug/c.png': 'mug',
}
BAD = {  # Relative path -> reason in the report.
    'bag/corrupt.jpg': 'corrupt', 'bag/half.jpg': 'truncated', 'shoe/half.png': 'truncated',
    'shoe/empty.png': 'empty', 'bag/notes.txt': 'not_an_image',
    'bag/z_copy.jpg': 'duplicate', 'mug/z_resaved.png': 'duplicate',
    'shoe/link.jpg': 'unreadable', 'mug/.DS_Store': 'hidden', 'stray.jpg': 'no_category',
}


def _make_folder_catalogue(root):
  s = str(root)
  _save(f'{s}/bag/red_wide.png', _wide_red())
  photo = _encoded(Image.fromarray(_noise(10)), 'JPEG', quality=90)
  _write(f'{s}/bag/a_photo.jpg', photo)
  _write(f'{s}/bag/z_copy.jpg', photo)  # Same bytes.
  _save(f'{s}/bag/png16.png', _png16())
  _save(f'{s}/bag/palette_t.png', _palette_transparent(), transparency=0)
  _save(f'{s}/bag/lossy.webp', Image.fromarray(_noise(11)), 'WEBP')
  first, second = _gif_frames()
  _save(f'{s}/bag/anim.gif', first, save_all=True, append_images=[second])
  _save(f'{s}/bag/gray.jpg', Image.fromarray(_noise(12)[..., 0]), 'JPEG')
  _save(f'{s}/shoe/cmyk.jpg', Image.fromarray(_noise(13)).convert('CMYK'), 'JPEG')
  _save(f'{s}/shoe/rgba.png', Image.fromarray(np.dstack([_noise(14), _noise(15)[..., :1]])))
  _save(f'{s}/shoe/tall.png', Image.new('RGB', (20, 80), GREEN))
  _write(f'{s}/shoe/exif6.jpg', _exif6_jpeg())
  _save(f'{s}/shoe/nested/deep.png', Image.fromarray(_noise(16)))
  for i, name in enumerate('abc'):
    _save(f'{s}/mug/{name}.png', Image.fromarray(_noise(20 + i)))
  # Same pixels, different bytes (no compression + a text chunk).
  from PIL import PngImagePlugin  # pylint: disable=g-import-not-at-top
  info = PngImagePlugin.PngInfo()
  info.add_text('note', 're-saved')
  _save(f'{s}/mug/z_resaved.png', Image.fromarray(_noise(20)), compress_level=0, pnginfo=info)
  _write(f'{s}/bag/corrupt.jpg', np.random.RandomState(5).bytes(700))
  jpeg = _encoded(Image.fromarray(_noise(30)), 'JPEG')
  png = _encoded(Image.fromarray(_noise(31)), 'PNG')
  _write(f'{s}/bag/half.jpg', jpeg[:len(jpeg) // 2])
  _write(f'{s}/shoe/half.png', png[:len(png) // 2])
  _write(f'{s}/shoe/empty.png', b'')
  _write(f'{s}/bag/notes.txt', b'shoot the bags on white\n')
  os.symlink(f'{s}/shoe/gone.jpg', f'{s}/shoe/link.jpg')  # Dangling link.
  _write(f'{s}/mug/.DS_Store', b'\0\0\0\1Bud1')
  _save(f'{s}/stray.jpg', Image.fromarray(_noise(40)), 'JPEG')
  os.makedirs(f'{s}/empty_folder')
  return s


@pytest.fixture(scope='module')
def folder_build(tmp_path_factory):
  source = _make_folder_catalogue(tmp_path_factory.mktemp('src'))
  out = str(tmp_path_factory.mktemp('tfds'))
  report = catalog.build_catalog(source, out, name='shop', resolution=R, holdout=0.25, seed=3)
  return source, out, report


def test_folder_build_report(folder_build):
  _, out, report = folder_build
  assert {s.path: s.reason for s in report.skipped} == BAD
  assert sorted(e['path'] for e in report.examples) == sorted(GOOD)
  assert {e['path']: e['category'] for e in report.examples} == GOOD
  assert report.vocabulary == {'category': ['bag', 'mug', 'shoe']}
  assert report.split_sizes == {'train': 11, 'test': 4}
  assert report.counts['category']['bag'] == {'train': 5, 'test': 2}
  assert report.counts['category']['mug'] == {'train': 2, 'test': 1}
  assert report.counts['category']['shoe'] == {'train': 4, 'test': 1}
  assert report.skipped_counts['duplicate'] == 2 and report.skipped_counts['truncated'] == 2
  dup = {s.path: s.detail for s in report.skipped}
  assert dup['bag/z_copy.jpg'] == 'same bytes as bag/a_photo.jpg'
  assert dup['mug/z_resaved.png'] == 'same decoded pixels as mug/a.png'
  assert any('empty_folder' in w for w in report.warnings)
  assert any('stray.jpg' in w for w in report.warnings) is False
  # The JSON on disk says the same, and the summary has every count.
  assert report.report_path == os.path.join(out, 'shop', 'build_report.json')
  with open(report.report_path) as f:
    saved = json.load(f)
  assert saved['skipped_counts'] == report.skipped_counts
  assert {s['path']: s['reason'] for s in saved['skipped']} == BAD
  summary = report.summary()
  for text in ('train=11', 'test=4', 'truncated: 2', 'duplicate: 2', 'bag: 7 (train 5, test 2)',
               report.report_path):
    assert text in summary
  assert sorted(os.listdir(out)) == ['shop']  # No temp folders left.


def test_folder_build_loads_in_a_fresh_process(folder_build):
  _, out, _ = folder_build
  code = textwrap.dedent(f"""
      import json, numpy as np, tensorflow_datasets as tfds
      b = tfds.builder('shop', data_dir={out!r})
      res = dict(names=b.info.features['category'].names,
                 feats=sorted(b.info.features.keys()), counts={{}}, shapes=set(), band=0)
      for split in ('train', 'test'):
        ds = tfds.load('shop', data_dir={out!r}, split=split)
        n = 0
        for ex in tfds.as_numpy(ds):
          img = ex['image']; n += 1
          res['shapes'].add(str((img.shape, img.dtype.name)))
          # The wide red image: red rows in the middle, white rows above and below.
          white = (img[:6] == 255).all() and (img[10:] == 255).all()
          res['band'] += int(white and (img[6:10] == [255, 0, 0]).all())
        res['counts'][split] = n
      res['shapes'] = sorted(res['shapes'])
      print('RESULT', json.dumps(res))
  """)
  proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                        timeout=300, cwd='/')
  assert proc.returncode == 0, proc.stderr[-3000:]
  line = [l for l in proc.stdout.splitlines() if l.startswith('RESULT ')][-1]
  res = json.loads(line[len('RESULT '):])
  assert res['names'] == ['bag', 'mug', 'shoe']
  assert res['feats'] == ['category', 'image']
  assert res['counts'] == {'train': 11, 'test': 4}
  assert res['shapes'] == [str(((R, R, 3), 'uint8'))]
  assert res['band'] == 1


def _make_csv_catalogue(root):
  s = str(root)
  for i in range(1, 8):
    _save(f'{s}/imgs/r{i}.png', Image.fromarray(_noise(100 + i)))
  _save(f'{s}/imgs/extra.png', Image.fromarray(_noise(99)))  # Not listed in the CSV.
  _write(f'{s}/imgs/bad.png', b'\x89PNG\r\n\x1a\n' + b'\0' * 40)
  _save(f'{s}/../outside.png', Image.fromarray(_noise(98)))
  rows = [
      'file,Category,Colour Name',
      'imgs/r1.png,bag,red',
      'imgs/r2.png,bag,blue',
      'imgs/r3.png, shoe ,red',
      'imgs/r4.png,shoe,green',
      'imgs/r5.png,mug,blue',
      'imgs/r7.png,mug,red',
      'imgs/missing.png,bag,red',
      'imgs/r6.png,shoe,',
      'imgs/r6.png,bag',
      '../outside.png,bag,red',
      'imgs/r1.png,shoe,red',
      'imgs/bad.png,bag,red',
      '',
  ]
  csv_path = f'{s}/labels.csv'
  with open(csv_path, 'w') as f:
    f.write('\n'.join(rows) + '\n')
  return s, csv_path


CSV_SKIPPED = [  # (path, reason, CSV line)
    ('imgs/missing.png', 'missing_file', 8), ('imgs/r6.png', 'missing_value', 9),
    ('imgs/r6.png', 'malformed_row', 10), ('../outside.png', 'outside_source', 11),
    ('imgs/r1.png', 'duplicate', 12), ('imgs/bad.png', 'corrupt', 13),
]


def _check_csv_report(report):
  assert sorted((s.path, s.reason, s.row) for s in report.skipped) == sorted(CSV_SKIPPED)
  assert report.vocabulary == {'category': ['bag', 'mug', 'shoe'],
                               'colour_name': ['blue', 'green', 'red']}
  assert report.columns['colour_name'] == 'Colour Name'
  assert report.num_images == 6 and report.layout == 'csv'
  assert report.split_sizes == {'train': 5, 'test': 1}
  dup = [s for s in report.skipped if s.reason == 'duplicate'][0]
  assert 'same bytes as imgs/r1.png' in dup.detail and "'bag' vs 'shoe'" in dup.detail
  assert any('extra.png' in w for w in report.warnings)


def test_csv_build_via_cli(tmp_path):
  source, csv_path = _make_csv_catalogue(tmp_path / 'src')
  out = str(tmp_path / 'out')
  proc = subprocess.run(
      [sys.executable, '-m', 'gan.data.catalog', 'build', '--source', source, '--csv', csv_path,
       '--data-dir', out, '--name', 'csv_shop', '--resolution', str(R), '--holdout', '0.2',
       '--fit', 'crop'], capture_output=True, text=True, timeout=300, cwd=REPO)
  assert proc.returncode == 0, proc.stderr[-3000:]
  report_path = os.path.join(out, 'csv_shop', 'build_report.json')
  assert f'report: {report_path}' in proc.stdout
  assert 'missing_file: 1' in proc.stdout and 'splits: train=5, test=1' in proc.stdout
  with open(report_path) as f:
    saved = json.load(f)
  report = catalog.BuildReport(**{k: v for k, v in saved.items()
                                  if k in catalog.BuildReport.__dataclass_fields__})
  report.skipped = [catalog.Skipped(**s) for s in saved['skipped']]
  _check_csv_report(report)
  assert saved['fit'] == 'crop'
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = tfds.builder('csv_shop', data_dir=out)
  assert builder.info.features['colour_name'].names == ['blue', 'green', 'red']
  assert builder.info.features['image'].shape == (R, R, 3)
  assert builder.info.splits['train'].num_examples == 5


def test_csv_build_api_labels_match_rows(tmp_path):
  source, csv_path = _make_csv_catalogue(tmp_path / 'src')
  out = str(tmp_path / 'out')
  report = catalog.build_catalog(source, out, csv=csv_path, name='csv_api', resolution=R,
                                 holdout=0.2)
  _check_csv_report(report)
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  # r3's ' shoe ' cell is stripped; every stored label pair matches a kept CSV row.
  kept = {(e['category'], e['colour_name']) for e in report.examples}
  assert ('shoe', 'red') in kept
  builder = tfds.builder('csv_api', data_dir=out)
  f = builder.info.features
  seen = set()
  for split in ('train', 'test'):
    for ex in tfds.as_numpy(builder.as_dataset(split=split)):
      seen.add((f['category'].int2str(ex['category']), f['colour_name'].int2str(ex['colour_name'])))
  assert seen == kept


# ----------------------------------------------------------------------------- errors


def _cases(tmp_path):
  s = str(tmp_path)
  good = _make_csv_catalogue(tmp_path / 'good')[0]
  _write(f'{s}/allbad/bag/x.jpg', b'garbage' * 20)
  _save(f'{s}/flat/a.png', Image.new('RGB', (20, 20), RED))

  def csv(name, text):
    return _write(f'{s}/{name}.csv', text.encode())

  return {
      'no usable image': (['--source', f'{s}/allbad'], 'No usable image'),
      'no category folders': (['--source', f'{s}/flat'], 'No category folders'),
      'csv one column': (['--source', good, '--csv', csv('one', 'file\nimgs/r1.png\n')],
                         'at least 2'),
      'csv no header': (['--source', good, '--csv', csv('nohead', 'imgs/r1.png,bag\n'
                                                         'imgs/r2.png,shoe\n')], 'no header'),
      'csv path column': (['--source', good, '--csv', csv('swapped', 'category,file\n'
                                                           'bag,imgs/r1.png\n')],
                          'first column'),
      'csv only header': (['--source', good, '--csv', csv('head', 'file,category\n')],
                          'no rows'),
      'csv missing': (['--source', good, '--csv', f'{s}/nope.csv'], 'is not a file'),
      'resolution 12': (['--source', good, '--resolution', '12'], 'power of two'),
      'resolution 4': (['--source', good, '--resolution', '4'], 'power of two'),
      'holdout 1': (['--source', good, '--holdout', '1'], 'holdout'),
      'holdout negative': (['--source', good, '--holdout', '-0.1'], 'holdout'),
      'registered name': (['--source', good, '--name', 'mnist'], 'registered TFDS'),
      'bad name': (['--source', good, '--name', 'My-Shop'], 'lower_snake_case'),
      'no source': (['--source', f'{s}/nowhere'], 'not a folder'),
  }


def test_errors_exit_nonzero_and_write_nothing(tmp_path, capsys):
  for label, (args, message) in _cases(tmp_path).items():
    out = str(tmp_path / 'out')
    code = catalog.main(['build', '--data-dir', out, '--resolution', str(R)] + args)
    err = capsys.readouterr().err
    assert code == 1, label
    assert 'error: ' in err and message in err, (label, err)
    assert not os.path.exists(out), label


def test_refuses_to_replace_a_foreign_folder(tmp_path, capsys):
  source, _ = _make_csv_catalogue(tmp_path / 'src')
  os.makedirs(tmp_path / 'out' / 'mine')
  _write(str(tmp_path / 'out' / 'mine' / 'keep.txt'), b'precious')
  with pytest.raises(catalog.CatalogError, match='not written by the catalogue builder'):
    catalog.build_catalog(source, str(tmp_path / 'out'), name='mine', resolution=R)
  assert os.listdir(tmp_path / 'out' / 'mine') == ['keep.txt']


def test_bad_cli_flag_is_a_usage_error(tmp_path):
  with pytest.raises(SystemExit) as info:
    catalog.main(['build', '--source', str(tmp_path), '--data-dir', str(tmp_path / 'o'),
                  '--fit', 'stretch'])
  assert info.value.code == 2


# ----------------------------------------------------------------------------- atomicity


def test_rebuild_replaces_only_after_success(tmp_path, monkeypatch):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  source = str(tmp_path / 'src')
  for i, category in enumerate(['bag', 'bag', 'shoe', 'shoe']):
    _save(f'{source}/{category}/{i}.png', Image.fromarray(_noise(200 + i)))
  out = str(tmp_path / 'out')
  catalog.build_catalog(source, out, name='cat', resolution=R)
  shape = lambda: tfds.builder('cat', data_dir=out).info.features['image'].shape

  # A build that dies after writing its files leaves the old dataset as it was.
  real_write = catalog._write_tfds

  def dying_write(*args, **kwargs):
    real_write(*args, **kwargs)
    raise KeyboardInterrupt('killed')

  monkeypatch.setattr(catalog, '_write_tfds', dying_write)
  with pytest.raises(KeyboardInterrupt):
    catalog.build_catalog(source, out, name='cat', resolution=2 * R)
  monkeypatch.undo()
  assert shape() == (R, R, 3) and sorted(os.listdir(out)) == ['cat']

  # A build SIGKILLed (dead pid) between the two renames of the swap: the old dataset is
  # back in place before the next build starts, so that build failing still leaves it.
  dead = subprocess.Popen([sys.executable, '-c', 'pass'])
  dead.wait()
  os.makedirs(os.path.join(out, f'.cat.old-{dead.pid}-y'))
  os.rename(os.path.join(out, 'cat'), os.path.join(out, f'.cat.old-{dead.pid}-y', 'cat'))
  stale = os.path.join(out, f'.cat.building-{dead.pid}-x')
  os.makedirs(os.path.join(stale, 'cat', '1.0.0'))
  monkeypatch.setattr(catalog, '_write_tfds', dying_write)
  with pytest.raises(KeyboardInterrupt):
    catalog.build_catalog(source, out, name='cat', resolution=2 * R)
  monkeypatch.undo()
  assert shape() == (R, R, 3) and sorted(os.listdir(out)) == ['cat']

  os.makedirs(os.path.join(stale, 'cat', '1.0.0'))  # Leftovers are cleaned by the next build.
  report = catalog.build_catalog(source, out, name='cat', resolution=2 * R, holdout=0.0)
  assert shape() == (2 * R, 2 * R, 3) and sorted(os.listdir(out)) == ['cat']
  assert report.split_sizes == {'train': 4}  # holdout 0: no test split.
  assert list(tfds.builder('cat', data_dir=out).info.splits) == ['train']


def test_output_inside_source_and_windows_paths(tmp_path):
  source = str(tmp_path / 'src')
  for i, category in enumerate(['bag', 'shoe']):
    _save(f'{source}/{category}/{i}.png', Image.fromarray(_noise(300 + i)))
  out = os.path.join(source, 'tfds')  # The output folder is not read as a category.
  first = catalog.build_catalog(source, out, name='inside', resolution=R, holdout=0.0)
  second = catalog.build_catalog(source, out, name='inside', resolution=R, holdout=0.0)
  assert first.num_files == second.num_files == 2 and not second.skipped
  assert second.vocabulary == {'category': ['bag', 'shoe']}
  assert len(second.warnings) == 1 and '--holdout 0' in second.warnings[0]
  csv_path = _write(f'{source}/labels.csv', b'path;colour\r\nbag\\0.png;red\r\nshoe/1.png;blue\r\n')
  report = catalog.build_catalog(source, str(tmp_path / 'o'), csv=csv_path, name='win',
                                 resolution=R, holdout=0.0)
  assert report.vocabulary == {'colour': ['blue', 'red']} and not report.skipped
