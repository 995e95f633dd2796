"""Catalogue builder on messy real-world input: each kind is read correctly, or skipped and named
in the report; never a crash, never a silently wrong label."""
import io
import json
import os
import struct
import unicodedata
import zlib

from PIL import Image
import pytest

from gan.data import catalog
from gan.data import catalog_csv
from gan.data import catalog_decode
from gan.data import images

R = 16


def _png_claiming(width, height):
  """A tiny PNG whose header claims width x height pixels (a decompression bomb's shape)."""
  def chunk(kind, data):
    return (struct.pack('>I', len(data)) + kind + data +
            struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))
  return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0,
                                                               0, 0)) +
          chunk(b'IDAT', zlib.compress(b'\0' * 4096)) + chunk(b'IEND', b''))


def _jpeg_claiming(width, height):
  """A small real JPEG with the size in its SOF header rewritten."""
  buffer = io.BytesIO()
  Image.new('RGB', (16, 16), (90, 90, 90)).save(buffer, 'JPEG')
  data = bytearray(buffer.getvalue())
  sof = data.index(b'\xff\xc0')
  data[sof + 5:sof + 9] = struct.pack('>HH', height, width)
  return bytes(data)


def _solid(path, grey, size=(24, 24)):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.new('RGB', size, (grey,) * 3).save(path)


def test_header_limits_refuse_before_decoding(tmp_path):
  s = catalog_decode.Settings(R, 'pad', images.WHITE)
  cases = {'bomb.png': _png_claiming(100_000, 100_000),  # 10^10 pixels: Pillow refuses too.
           'big.png': _png_claiming(9000, 9000),  # 81 M: under Pillow's guard, over ours.
           'bomb.jpg': _jpeg_claiming(30000, 30000)}
  for name, data in cases.items():
    (tmp_path / name).write_bytes(data)
    result = catalog_decode.decode_file(str(tmp_path / name), s)
    assert result[:2] == ('skip', 'too_large'), (name, result)
  assert 'over the limit of 64,000,000' in catalog_decode.decode_file(
      str(tmp_path / 'big.png'), s)[2]
  _solid(str(tmp_path / 'ok.png'), 50, (100, 100))
  assert catalog_decode.decode_file(str(tmp_path / 'ok.png'), s)[0] == 'ok'
  off = catalog_decode.Settings(R, 'pad', images.WHITE, max_pixels=None)
  assert catalog_decode.pillow_limit(off) is None  # --max-pixels 0 turns Pillow's guard off too.
  assert catalog_decode.pillow_limit(s) >= 64_000_000
  small = catalog_decode.Settings(R, 'pad', images.WHITE, max_pixels=5000)
  assert catalog_decode.decode_file(str(tmp_path / 'ok.png'), small)[1] == 'too_large'
  _solid(str(tmp_path / 'strip.png'), 50, (400, 10))
  assert catalog_decode.decode_file(str(tmp_path / 'strip.png'), s)[1] == 'bad_aspect'
  loose = catalog_decode.Settings(R, 'pad', images.WHITE, max_aspect=None)
  assert catalog_decode.decode_file(str(tmp_path / 'strip.png'), loose)[0] == 'ok'


# ----------------------------------------------------------------------------- one messy CSV

NFD = unicodedata.normalize('NFD', 'Crème')
# Image file -> grey level (its identity when read back).
FILES = {'imgs/plain.png': 10, 'imgs/sac à main 1.png': 40, 'imgs/靴 2.png': 70,
         f'imgs/{NFD} bag.png': 100, 'imgs/comma.png': 130, 'imgs/latin.png': 160,
         'imgs/twice.png': 190, 'imgs/conflict.png': 220, 'imgs/win.png': 250}


def _messy_csv(root):
  s = str(root)
  for rel, grey in FILES.items():
    _solid(f'{s}/{rel}', grey)
  with open(f'{s}/imgs/bomb.png', 'wb') as f:
    f.write(_png_claiming(100_000, 100_000))
  _solid(f'{s}/imgs/strip.png', 5, (500, 20))
  os.symlink('.', f'{s}/imgs/loop')  # A folder link back to its own folder.
  os.symlink('self.png', f'{s}/imgs/self.png')  # A file link to itself.
  lines = [
      'path,Colour,Style',
      'imgs/plain.png,red,casual',
      '"imgs/sac à main 1.png",blue,formal',
      'imgs/靴 2.png,blue,casual',
      'imgs/Crème bag.png,Crème,formal',  # NFC in the CSV, NFD on disk (a Mac's file names).
      'imgs/comma.png,"red, dark",casual',  # A quoted comma inside a value.
      'imgs/twice.png,green,casual',
      'imgs/twice.png,green,casual',  # The same row again.
      'imgs/conflict.png,green,casual',
      'imgs/conflict.png,red,casual',  # The same file with another label.
      'imgs/bomb.png,red,casual',
      'imgs/strip.png,red,casual',
      'imgs/self.png,red,casual',
      'imgs/win.png,NFD_' + NFD + ',casual',
  ]
  text = '\ufeff' + '\r\n'.join(lines) + '\r\n'  # Excel: a BOM and Windows line ends.
  data = text.encode('utf-8')
  # A row whose value is in Latin-1, not UTF-8: skipped, never turned into a garbled label.
  data += b'imgs/latin.png,caf\xe9,casual\r\n'
  with open(f'{s}/labels.csv', 'wb') as f:
    f.write(data)
  return s


EXPECTED_SKIPS = {  # (path, line) -> reason
    ('imgs/twice.png', 8): 'duplicate', ('imgs/conflict.png', 10): 'duplicate',
    ('imgs/bomb.png', 11): 'too_large', ('imgs/strip.png', 12): 'bad_aspect',
    ('imgs/self.png', 13): 'link_loop', ('imgs/latin.png', 15): 'bad_encoding',
}
EXPECTED_LABELS = {  # grey level -> (colour, style)
    10: ('red', 'casual'), 40: ('blue', 'formal'), 70: ('blue', 'casual'),
    100: ('Crème', 'formal'), 130: ('red, dark', 'casual'), 190: ('green', 'casual'),
    220: ('green', 'casual'), 250: ('NFD_Crème', 'casual'),
}


@pytest.fixture(scope='module')
def messy_build(tmp_path_factory):
  source = _messy_csv(tmp_path_factory.mktemp('messy'))
  out = str(tmp_path_factory.mktemp('tfds'))
  report = catalog.build_catalog(source, out, csv=f'{source}/labels.csv', name='messy',
                                 resolution=R, holdout=0, workers=2)
  return source, out, report


def test_messy_csv_is_read_or_skipped_by_name(messy_build):
  _, _, report = messy_build
  assert {(s.path, s.row): s.reason for s in report.skipped} == EXPECTED_SKIPS
  detail = {s.path: s.detail for s in report.skipped}
  assert 'same labels' in detail['imgs/twice.png']
  assert "labels differ: Colour 'green' vs 'red'" in detail['imgs/conflict.png']
  assert 'cp1252' in detail['imgs/latin.png']  # Says how to fix it.
  assert report.vocabulary == {
      'colour': sorted(['NFD_Crème', 'blue', 'Crème', 'green', 'red', 'red, dark']),
      'style': ['casual', 'formal']}
  assert any('different labels' in w for w in report.warnings)
  summary = report.summary()  # Prints (no encoding error) and names every reason.
  for reason in set(EXPECTED_SKIPS.values()):
    assert f'{reason}: ' in summary


def test_messy_csv_labels_match_their_images(messy_build):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  _, out, report = messy_build
  builder = tfds.builder('messy', data_dir=out)
  f = builder.info.features
  seen = {}
  for ex in tfds.as_numpy(builder.as_dataset(split='train')):
    seen[int(ex['image'][8, 8, 0])] = (f['colour'].int2str(ex['colour']),
                                       f['style'].int2str(ex['style']))
  assert seen == EXPECTED_LABELS
  with open(report.report_path) as fp:
    saved = json.load(fp)
  assert {(s['path'], s['row']): s['reason'] for s in saved['skipped']} == EXPECTED_SKIPS


def test_csv_in_another_encoding_reads_with_the_flag(tmp_path):
  source = str(tmp_path)
  _solid(f'{source}/a.png', 30)
  _solid(f'{source}/b.png', 60)
  with open(f'{source}/labels.csv', 'wb') as f:
    f.write('file;Farbe\na.png;Crème\nb.png;Grün\n'.encode('cp1252'))
  candidates, skipped, _, _ = catalog_csv.scan_csv(source, f'{source}/labels.csv', source,
                                                   encoding='cp1252')
  assert [c.values for c in candidates] == [('Crème',), ('Grün',)] and not skipped
  candidates, skipped, _, _ = catalog_csv.scan_csv(source, f'{source}/labels.csv', source)
  assert not candidates and {s.reason for s in skipped} == {'bad_encoding'}
  with pytest.raises(catalog.CatalogError, match='--csv-encoding'):
    with open(f'{source}/bad_header.csv', 'wb') as f:
      f.write(b'file,Gr\xf6\xdfe\na.png,M\n')
    catalog_csv.scan_csv(source, f'{source}/bad_header.csv', source)


def test_header_names_become_features():
  assert catalog_csv.feature_name('baseColour', 0) == 'base_colour'
  assert catalog_csv.feature_name('Colour Name', 0) == 'colour_name'
  assert catalog_csv.feature_name('Größe', 0) == 'groe'
  assert catalog_csv.feature_name('颜色', 2) == 'column_3'
  assert catalog_csv.feature_name('2nd colour', 0) == 'attr_2nd_colour'


# ----------------------------------------------------------------------------- messy folders


def test_messy_folders(tmp_path):
  s = str(tmp_path / 'src')
  _solid(f'{s}/bag/ok one.png', 20)
  _solid(f'{s}/bag/日本 2.png', 40)
  _solid(f'{s}/shoe/a.png', 60)
  raw = os.fsencode(s)
  with open(raw + b'/shoe/caf\xe9.png', 'wb') as f:  # A file name that is not UTF-8: kept.
    Image.new('RGB', (24, 24), (80,) * 3).save(f, 'PNG')
  os.makedirs(raw + b'/r\xe9sum\xe9')  # A category folder that is not UTF-8: cannot be a label.
  with open(raw + b'/r\xe9sum\xe9/x.png', 'wb') as f:
    Image.new('RGB', (24, 24), (100,) * 3).save(f, 'PNG')
  _solid(f'{s}/{NFD}/n.png', 120)  # A category in NFD: labelled in NFC.
  os.symlink('..', f'{s}/shoe/up')  # A loop back to the source.
  os.symlink('../bag', f'{s}/shoe/bags')  # A second way into bag/.
  os.symlink('me.jpg', f'{s}/bag/me.jpg')  # A file link to itself.
  _solid(f'{s}/bag/wide.png', 140, (900, 30))
  with open(f'{s}/bag/bomb.png', 'wb') as f:
    f.write(_png_claiming(50_000, 50_000))
  out = str(tmp_path / 'out')
  report = catalog.build_catalog(s, out, name='folders', resolution=R, holdout=0, workers=1)
  assert {(sk.path, sk.reason) for sk in report.skipped} == {
      ('shoe/up/', 'link_loop'), ('shoe/bags/', 'link_loop'), ('bag/me.jpg', 'link_loop'),
      ('r\\xe9sum\\xe9/x.png', 'bad_encoding'), ('bag/wide.png', 'bad_aspect'),
      ('bag/bomb.png', 'too_large')}
  assert report.vocabulary == {'category': sorted(['bag', 'shoe', 'Crème'])}
  assert sorted(e['path'] for e in report.examples) == sorted([
      'bag/ok one.png', 'bag/日本 2.png', 'shoe/a.png', 'shoe/caf\\xe9.png', f'{NFD}/n.png'])
  json.dumps(report.to_dict())  # Everything in the report is text.
  assert 'link_loop: 3' in report.summary()


def test_nul_bytes_and_control_characters_never_become_labels(tmp_path):
  source = str(tmp_path)
  for name, grey in (('a.png', 10), ('b.png', 20), ('c.png', 30)):
    _solid(f'{source}/i/{name}', grey)
  with open(f'{source}/l.csv', 'wb') as f:
    f.write(b'path,colour\ni/a.png,red\ni/b\x00.png,blue\ni/b.png,bl\x00ue\n'
            b'i/c.png,"multi\nline"\n')
  candidates, skipped, _, _ = catalog_csv.scan_csv(source, f'{source}/l.csv', f'{source}/o')
  assert [(c.path, c.values) for c in candidates] == [('i/a.png', ('red',))]
  assert [(s.path, s.reason, s.row) for s in skipped] == [
      ('i/b\x00.png', 'missing_file', 3), ('i/b.png', 'bad_value', 4),
      ('i/c.png', 'bad_value', 5)]
  with pytest.raises(catalog.CatalogError, match='cannot be filled in'):
    catalog_csv.scan_csv(source, f'{source}/l.csv', f'{source}/o', id_column='path',
                         path_template='{id:05d}.png')
