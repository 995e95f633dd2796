"""What a catalogue build produced and left out: the report written next to the dataset."""
import collections
import dataclasses
import re
from typing import Dict, List, Optional

from gan.data import images

REPORT_FILENAME = 'build_report.json'
BUILDER_ID = 'gan.data.catalog'  # Marks folders the builder may replace on a rebuild.
OTHER = 'other'  # The value rare values are folded into (--min-count).

# Why a file or CSV row was skipped: the image reasons plus the catalogue's own.
SKIP_REASONS = dict(images.REASONS, **{
    'duplicate': 'same bytes or same decoded pixels as an earlier image (the first is kept)',
    'missing_file': 'a CSV row whose path is not a file under --source',
    'outside_source': 'a CSV row whose path points outside --source',
    'missing_path': 'a CSV row with an empty path cell',
    'missing_value': 'a CSV row with an empty attribute value',
    'bad_value': 'an attribute value that contains a line break or another control character',
    'bad_encoding': 'a CSV cell or folder name that is not text in the expected encoding',
    'malformed_row': 'a CSV row with more or fewer cells than the header',
    'rare_value': 'an attribute value seen fewer than --min-count times (--drop-rare)',
    'no_category': 'a file directly in --source rather than in a category folder',
    'hidden': 'a hidden file or folder (name starts with ".")',
    'unreadable_folder': 'a folder under --source that cannot be listed (permissions?)',
    'link_loop': 'a link that leads back to a folder already searched, or to itself',
})


class CatalogError(ValueError):
  """The build cannot produce a dataset; nothing was written."""


_SURROGATES = re.compile('[\udc80-\udcff]')


def has_bad_bytes(text: str) -> bool:
  """Whether `text` holds bytes that did not decode (surrogate escapes)."""
  return bool(_SURROGATES.search(text))


def printable(text: str) -> str:
  """A path as text that prints and goes to JSON: undecodable bytes shown as \\xNN."""
  if not has_bad_bytes(text):
    return text
  return text.encode('utf-8', 'surrogateescape').decode('utf-8', 'backslashreplace')


@dataclasses.dataclass
class Skipped:
  """One file or CSV row left out of the dataset, and why (`reason` is in SKIP_REASONS)."""
  path: str
  reason: str
  detail: str = ''
  row: Optional[int] = None  # 1-based CSV line number (the header is line 1).

  def __post_init__(self):
    self.path = printable(self.path)
    self.detail = printable(self.detail)


@dataclasses.dataclass
class BuildReport:
  """What a build produced. Also written as JSON to `report_path`."""
  name: str
  path: str  # The dataset folder: DATA_DIR/NAME.
  report_path: str
  data_dir: str
  source: str
  csv: Optional[str]
  layout: str  # 'folders' or 'csv'.
  resolution: int
  fit: str
  background: object
  holdout: float
  seed: int
  vocabulary: Dict[str, List[str]]  # ClassLabel feature -> names (index order).
  columns: Dict[str, str]  # ClassLabel feature -> where it came from (CSV header / folder).
  split_sizes: Dict[str, int]
  counts: Dict[str, Dict[str, Dict[str, int]]]  # feature -> value -> split -> images.
  skipped: List[Skipped]
  num_files: int  # Files / CSV rows looked at.
  upscaled: int  # Images smaller than the resolution (scaled up: may look soft).
  warnings: List[str]
  examples: List[Dict[str, str]]  # {'path', 'split', feature: value, ...} per kept image.
  min_count: int = 1
  rare_policy: str = OTHER  # 'other' (folded into OTHER) or 'drop' (rows skipped).
  rare: Dict[str, Dict[str, int]] = dataclasses.field(default_factory=dict)  # feature -> value -> n.
  limits: Dict[str, object] = dataclasses.field(default_factory=dict)  # max_pixels, max_aspect.
  seconds: float = 0.0
  workers: int = 1

  @property
  def num_images(self) -> int:
    return sum(self.split_sizes.values())

  @property
  def skipped_counts(self) -> Dict[str, int]:
    return dict(sorted(collections.Counter(s.reason for s in self.skipped).items()))

  def to_dict(self) -> dict:
    # Shallow: the examples list (one small dict per image) is not deep-copied for the JSON.
    d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
    d['skipped'] = [dataclasses.asdict(s) for s in self.skipped]
    d['builder'] = BUILDER_ID
    d['num_images'] = self.num_images
    d['skipped_counts'] = self.skipped_counts
    d['load'] = f"tfds.load({self.name!r}, data_dir={self.data_dir!r}, split='train')"
    return d

  def _rare_lines(self) -> List[str]:
    if not any(self.rare.values()):
      return []
    what = (f'folded into {OTHER!r}' if self.rare_policy == OTHER
            else 'dropped (their images are skipped as rare_value)')
    lines = [f'  values seen fewer than {self.min_count} times, {what}:']
    for feature, values in self.rare.items():
      if values:
        lines.append(f'    {feature}: ' + ', '.join(f'{v} ({n})' for v, n in values.items()))
    return lines

  def summary(self) -> str:
    """Human-readable summary: counts per reason, per attribute value, split sizes."""
    rate = f', {self.num_files / self.seconds:.0f} files/s' if self.seconds else ''
    lines = [
        f'Built catalogue {self.name!r}: {self.num_images} images '
        f'({self.resolution}x{self.resolution}, fit={self.fit}) from {self.num_files} '
        f'{"CSV rows" if self.layout == "csv" else "files"} in {self.source}',
        f'  took {self.seconds:.1f} s on {self.workers} processes{rate}',
        '  splits: ' + ', '.join(f'{k}={v}' for k, v in self.split_sizes.items()),
    ]
    for feature, names in self.vocabulary.items():
      lines.append(f'  {feature} ({len(names)} values, from {self.columns[feature]}):')
      for value in names:
        c = self.counts[feature][value]
        lines.append(f'    {value}: {sum(c.values())} '
                     f'({", ".join(f"{k} {v}" for k, v in c.items())})')
    lines += self._rare_lines()
    if self.skipped:
      lines.append(f'  skipped {len(self.skipped)} (listed in the report):')
      lines += [f'    {reason}: {n}' for reason, n in self.skipped_counts.items()]
    else:
      lines.append('  skipped: none')
    if self.upscaled:
      lines.append(f'  {self.upscaled} images were smaller than {self.resolution} px and '
                   'were scaled up')
    lines += [f'  warning: {w}' for w in self.warnings]
    lines.append(f'  report: {self.report_path}')
    lines.append(f'  load with: {self.to_dict()["load"]}')
    return '\n'.join(lines)
