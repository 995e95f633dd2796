"""The CSV layout: a table of image paths (or ids) and attribute columns -> candidates.

Two ways to name the image of a row:
  path column:  the first column (or --id-column) holds the path relative to --source.
  id + template: --id-column id --path-template 'images/{id}.jpg' (the Kaggle "Fashion Product
                 Images" styles.csv); the template may also use any other column, {name}.
--attributes picks the columns to condition on (default: every column but the path/id one).

Real exports are messy, so the table is read row by row (never whole into memory) and:
- a UTF-8 BOM, Windows line ends, ',', ';' or tab delimiters and quoted cells with commas or
  line breaks are read as meant;
- bytes that are not text in --csv-encoding (default UTF-8) are not guessed at: a row with such
  bytes in an attribute skips as 'bad_encoding' (never a garbled label); in a path they are
  kept as the raw bytes of a file name, which is what they usually are;
- values are trimmed and put in one Unicode form, so NFC and NFD spellings are one label, and a
  path cell finds its file in either form;
- a file listed twice is used once: the later rows skip as 'duplicate', saying whether their
  labels differ.
"""
import codecs
import csv as csv_lib
import os
import re
import string
import unicodedata
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from gan.data import images
from gan.data.catalog_report import CatalogError, Skipped, has_bad_bytes, printable
from gan.data.catalog_scan import Candidate, label_text, loops, rel, walk

USAGE = ('The CSV needs a header row, then one row per image: the image path relative to '
         '--source (or an id with --id-column/--path-template), then one value per attribute, '
         'e.g. "path,category,colour" / "bags/a.jpg,handbag,red".')
_DELIMITERS = (',', ';', '\t')


def feature_name(header: str, index: int) -> str:
  """CSV header -> ClassLabel feature name (lower_snake_case ASCII: baseColour -> base_colour,
  'Colour Name' -> colour_name; accents dropped)."""
  ascii_text = unicodedata.normalize('NFKD', header).encode('ascii', 'ignore').decode()
  ascii_text = re.sub(r'(?<=[a-z0-9])(?=[A-Z])', '_', ascii_text)
  name = re.sub(r'[^0-9a-z]+', '_', ascii_text.strip().lower()).strip('_')
  if not name:
    return f'column_{index + 1}'  # A header with no Latin letters, e.g. '颜色'.
  return f'attr_{name}' if name[:1].isdigit() else name


def _delimiter(header_line: str) -> str:
  """The delimiter that splits the header into the most cells (quotes respected)."""
  def cells(d):
    try:
      return len(next(csv_lib.reader([header_line], delimiter=d), []))
    except csv_lib.Error:
      return 0
  return max(_DELIMITERS, key=cells)  # Ties keep ',' (first).


def _open(csv_path: str, encoding: str):
  try:
    codecs.lookup(encoding)
  except LookupError:
    raise CatalogError(f'--csv-encoding {encoding!r} is not a known text encoding; use e.g. '
                       'utf-8 (default), cp1252 or latin-1.') from None
  if codecs.lookup(encoding).name == 'utf-8':
    encoding = 'utf-8-sig'  # Drops the byte-order mark Excel writes.
  try:
    return open(csv_path, newline='', encoding=encoding, errors='surrogateescape')
  except OSError as e:
    raise CatalogError(f'--csv {csv_path} cannot be read: {e.strerror or e}.') from None


def read_rows(csv_path: str, encoding: str = 'utf-8'
              ) -> Iterator[Tuple[int, List[str]]]:
  """Yields (line number where the record starts, cells), the header first, blank lines out."""
  with _open(csv_path, encoding) as f:
    try:
      first = f.readline()
      f.seek(0)
    except OSError as e:
      raise CatalogError(f'--csv {csv_path} cannot be read: {e.strerror or e}.') from None
    reader = csv_lib.reader(f, delimiter=_delimiter(first.lstrip('\ufeff')))
    line = 0
    while True:
      start = line + 1
      try:
        row = next(reader)
      except StopIteration:
        return
      except csv_lib.Error as e:
        raise CatalogError(f'--csv {csv_path} is not a valid CSV file near line {start}: '
                           f'{e}.') from None
      line = reader.line_num
      if row:
        yield start, row


def _find_column(header: Sequence[str], name: str, flag: str) -> int:
  for match in (lambda h: h == name, lambda h: h.lower() == name.lower(),
                lambda h: feature_name(h, 0) == feature_name(name, 0)):
    found = [i for i, h in enumerate(header) if match(h)]
    if found:
      return found[0]
  raise CatalogError(f'{flag} {name!r} is not a column of the CSV; its columns are: '
                     f'{", ".join(header)}.')


class Table:
  """The CSV's header, resolved against the flags: which column names the image, which columns
  become features."""

  def __init__(self, csv_path: str, header: List[str], id_column: Optional[str],
               path_template: Optional[str], attributes: Optional[Sequence[str]]):
    self.csv_path, self.header = csv_path, header
    if has_bad_bytes(''.join(header)):
      raise CatalogError(f'--csv {csv_path}: the header is not text in the given encoding '
                         f'({header}). Save the file as UTF-8, or pass --csv-encoding '
                         '(e.g. cp1252 for a Windows export).')
    if len(header) < 2:
      raise CatalogError(f'--csv {csv_path} has {len(header)} column(s); it needs at least 2 '
                         f'(image path + one attribute). {USAGE}')
    if any(not h for h in header):
      raise CatalogError(f'--csv {csv_path} has an empty column name in its header '
                         f'{header}. Name every column. {USAGE}')
    self.id_index = 0 if id_column is None else _find_column(header, id_column, '--id-column')
    self.template = path_template or '{id}'
    self.fields = [f for _, f, _, _ in string.Formatter().parse(self.template) if f is not None]
    for f in self.fields:
      if f != 'id':
        _find_column(header, f, f'--path-template field {{{f}}}')
    try:
      self.template.format_map({f: '' for f in self.fields})
    except (ValueError, IndexError, KeyError) as e:
      raise CatalogError(f'--path-template {self.template!r} cannot be filled in ({e}); use '
                         "plain fields, e.g. 'images/{id}.jpg'.") from None
    if 'id' not in self.fields and path_template:
      raise CatalogError(f'--path-template {path_template!r} has no {{id}}: write where the '
                         "id goes, e.g. 'images/{id}.jpg'.")
    if attributes is None:
      chosen = [i for i in range(len(header)) if i != self.id_index]
    else:
      chosen = [_find_column(header, a, '--attributes') for a in attributes]
      if self.id_index in chosen:
        raise CatalogError(f'--attributes names the image column {header[self.id_index]!r}.')
    self.columns: Dict[str, str] = {}  # feature -> header.
    self.indices: List[int] = []
    for i in chosen:
      feature = feature_name(header[i], i)
      if feature == 'image' or feature in self.columns:
        clash = ('the image feature' if feature == 'image'
                 else f'column {self.columns.get(feature)!r}')
        raise CatalogError(
            f'--csv {csv_path}: attribute column {header[i]!r} becomes feature name '
            f'{feature!r}, which clashes with {clash}. Rename the column or leave it out of '
            '--attributes.')
      self.columns[feature] = header[i]
      self.indices.append(i)

  def path_of(self, cells: Sequence[str]) -> str:
    named = {h: c for h, c in zip(self.header, cells)}
    named['id'] = cells[self.id_index]
    return self.template.format_map(named)


def _resolve(source: str, value: str) -> Optional[str]:
  """CSV path cell -> absolute path, or None if it points outside `source`."""
  value = value.replace('\\', '/')  # Paths typed on Windows.
  path = os.path.normpath(os.path.join(source, value))
  inside = os.path.commonpath([path, source]) == source and path != source
  return path if inside else None


def _existing(path: str) -> str:
  """The file's path in the Unicode form it has on disk (Macs store NFD names)."""
  if os.path.lexists(path):
    return path
  for form in ('NFC', 'NFD'):
    other = unicodedata.normalize(form, path)
    if other != path and os.path.lexists(other):
      return other
  return path


def _check_header_is_not_data(table: Table, source: str) -> None:
  first = table.header[table.id_index]
  path = _resolve(source, first)
  if images.is_image_name(first) or (path and os.path.isfile(path)):
    raise CatalogError(f'--csv {table.csv_path} has no header: its first row starts with the '
                       f'file {first!r}. Add a header row. {USAGE}')


def scan_csv(source: str, csv_path: str, data_dir: str, id_column: Optional[str] = None,
             path_template: Optional[str] = None, attributes: Optional[Sequence[str]] = None,
             encoding: str = 'utf-8'
             ) -> Tuple[List[Candidate], List[Skipped], List[str], Dict[str, str]]:
  """CSV layout -> (candidates, skipped rows, warnings, {feature: header})."""
  rows = read_rows(csv_path, encoding)
  header_row = next(rows, None)
  header = [h.strip().lstrip('\ufeff').strip() for h in header_row[1]] if header_row else []
  table = Table(csv_path, header, id_column, path_template, attributes)
  if id_column is None and path_template is None:
    _check_header_is_not_data(table, source)
  candidates, skipped, existing, first_seen = [], [], 0, {}
  num_rows, examples, differing = 0, [], 0
  for line, row in rows:
    num_rows += 1
    cells = [c.strip() for c in row]
    label = cells[table.id_index] if len(cells) > table.id_index and cells[table.id_index] \
        else f'<row {line}>'
    if len(examples) < 3:
      examples.append(label)
    if len(cells) != len(header):
      skipped.append(Skipped(label, 'malformed_row',
                             f'{len(cells)} cells, the header has {len(header)} (an unquoted '
                             'delimiter inside a value?)', line))
      continue
    if not cells[table.id_index]:
      skipped.append(Skipped(label, 'missing_path', 'the path cell is empty', line))
      continue
    relative = table.path_of(cells)
    path = _resolve(source, relative)
    if path is None:
      skipped.append(Skipped(relative, 'outside_source', f'not inside {source}', line))
      continue
    path = _existing(path)
    if os.path.islink(path) and loops(path):
      skipped.append(Skipped(relative, 'link_loop', 'a link that leads to itself', line))
      continue
    if not os.path.isfile(path):
      what = 'a folder' if os.path.isdir(path) else 'no such file'
      skipped.append(Skipped(relative, 'missing_file', f'{path}: {what}', line))
      continue
    existing += 1
    values = [cells[i] for i in table.indices]
    problem = _value_problem(values, [table.header[i] for i in table.indices], encoding)
    if problem:
      skipped.append(Skipped(relative, problem[0], problem[1], line))
      continue
    values = tuple(label_text(v) for v in values)
    key = rel(path, source)
    if key in first_seen:
      first = candidates[first_seen[key]]
      first_line, first_values = first.row, first.values
      differ = [f'{h} {a!r} vs {b!r}' for h, a, b in zip(table.columns.values(), first_values,
                                                          values) if a != b]
      differing += bool(differ)
      detail = (f'the same file as line {first_line}, so same bytes as {key}' +
                (f' (labels differ: {"; ".join(differ)})' if differ else ' (same labels)'))
      skipped.append(Skipped(relative, 'duplicate', detail, line))
      continue
    first_seen[key] = len(candidates)
    candidates.append(Candidate(key, values, line))
  if not num_rows:
    raise CatalogError(f'--csv {csv_path} has a header but no rows. {USAGE}')
  if not existing:
    raise CatalogError(
        f'None of the {num_rows} rows of {csv_path} names a file under {source} (e.g. '
        f'{", ".join(repr(e) for e in examples)}, column {header[table.id_index]!r}'
        f'{f", template {table.template!r}" if path_template else ""}). The '
        f'{"first column" if id_column is None else "--id-column"} must hold image paths '
        'relative to --source (or ids, with --path-template); check --source and the columns.')
  warnings = _unlisted_warnings(source, data_dir, first_seen)
  if differing:
    warnings.append(f'{differing} CSV rows list a file again with different labels; the first '
                    "row's labels were kept (see 'duplicate' in the report)")
  return candidates, skipped, warnings, table.columns


def _value_problem(values: Sequence[str], headers: Sequence[str], encoding: str
                   ) -> Optional[Tuple[str, str]]:
  """(reason, detail) when a row's attribute values cannot be labels, else None."""
  checks = (('missing_value', 'empty', lambda v: not v),
            ('bad_encoding', f'not {encoding} text (pass --csv-encoding, e.g. cp1252, if the '
             'file was saved in another encoding) in', has_bad_bytes),
            ('bad_value', 'line break or control character in',
             lambda v: any(ch < ' ' or ch == '\x7f' for ch in v)))
  for reason, what, bad in checks:
    columns = [h for h, v in zip(headers, values) if bad(v)]
    if columns:
      return reason, f'{what} {", ".join(columns)}'
  return None


def _unlisted_warnings(source: str, data_dir: str, listed: set) -> List[str]:
  warnings, unreadable = [], []
  unlisted, count = [], 0
  for d, _, fs in walk(source, data_dir, unreadable):
    for f in fs:
      if images.is_image_name(f) and rel(os.path.join(d, f), source) not in listed:
        count += 1
        if len(unlisted) < 3:
          unlisted.append(rel(os.path.join(d, f), source))
  if count:
    warnings.append(f'{count} image files under --source are not in the CSV and were not '
                    f'used (e.g. {", ".join(printable(u) for u in unlisted)})')
  unreadable = [u for u in unreadable if u.reason == 'unreadable_folder']
  if unreadable:
    warnings.append(f'{len(unreadable)} folders under --source cannot be listed (e.g. '
                    f'{", ".join(u.path for u in unreadable[:3])}: {unreadable[0].detail}); '
                    'CSV rows pointing into them are reported as missing files')
  return warnings

