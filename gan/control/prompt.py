"""Free text -> attribute values of a run's vocabulary ("crimson striped handbag").

Works on any vocabulary: words are compared with the values after dropping case and the
separators ' ', '-', '_' ("light blue" == light_blue, "tshirt" == t-shirt), so multi-word values
are found by trying the longest run of words first. In order, a run of words is read as:
a value (or its plural/singular), a synonym whose target the vocabulary has, a colour name
(CSS or a few fashion names) mapped to the nearest catalogue colour in CIELAB, the name of an
attribute (ignored: "colour red"), a stop word (ignored), and last a typo of any of these.
What is left is reported in `unknown`, never dropped; every reading that is not literal gets a
line in `notes`. Used by `python -m gan.sample --prompt` and the web studio's text box.
"""
import dataclasses
import functools
import math
import re
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

if TYPE_CHECKING:  # Importing gan.data loads TFDS: not needed to read a prompt.
  from gan.data.vocab import Vocabulary

# The 148 CSS named colours (CSS Color Module Level 4), name -> sRGB hex.
CSS_COLOURS: Dict[str, str] = {
    'aliceblue': '#f0f8ff', 'antiquewhite': '#faebd7', 'aqua': '#00ffff',
    'aquamarine': '#7fffd4', 'azure': '#f0ffff', 'beige': '#f5f5dc', 'bisque': '#ffe4c4',
    'black': '#000000', 'blanchedalmond': '#ffebcd', 'blue': '#0000ff',
    'blueviolet': '#8a2be2', 'brown': '#a52a2a', 'burlywood': '#deb887',
    'cadetblue': '#5f9ea0', 'chartreuse': '#7fff00', 'chocolate': '#d2691e',
    'coral': '#ff7f50', 'cornflowerblue': '#6495ed', 'cornsilk': '#fff8dc',
    'crimson': '#dc143c', 'cyan': '#00ffff', 'darkblue': '#00008b', 'darkcyan': '#008b8b',
    'darkgoldenrod': '#b8860b', 'darkgray': '#a9a9a9', 'darkgreen': '#006400',
    'darkgrey': '#a9a9a9', 'darkkhaki': '#bdb76b', 'darkmagenta': '#8b008b',
    'darkolivegreen': '#556b2f', 'darkorange': '#ff8c00', 'darkorchid': '#9932cc',
    'darkred': '#8b0000', 'darksalmon': '#e9967a', 'darkseagreen': '#8fbc8f',
    'darkslateblue': '#483d8b', 'darkslategray': '#2f4f4f', 'darkslategrey': '#2f4f4f',
    'darkturquoise': '#00ced1', 'darkviolet': '#9400d3', 'deeppink': '#ff1493',
    'deepskyblue': '#00bfff', 'dimgray': '#696969', 'dimgrey': '#696969',
    'dodgerblue': '#1e90ff', 'firebrick': '#b22222', 'floralwhite': '#fffaf0',
    'forestgreen': '#228b22', 'fuchsia': '#ff00ff', 'gainsboro': '#dcdcdc',
    'ghostwhite': '#f8f8ff', 'gold': '#ffd700', 'goldenrod': '#daa520', 'gray': '#808080',
    'green': '#008000', 'greenyellow': '#adff2f', 'grey': '#808080', 'honeydew': '#f0fff0',
    'hotpink': '#ff69b4', 'indianred': '#cd5c5c', 'indigo': '#4b0082', 'ivory': '#fffff0',
    'khaki': '#f0e68c', 'lavender': '#e6e6fa', 'lavenderblush': '#fff0f5',
    'lawngreen': '#7cfc00', 'lemonchiffon': '#fffacd', 'lightblue': '#add8e6',
    'lightcoral': '#f08080', 'lightcyan': '#e0ffff', 'lightgoldenrodyellow': '#fafad2',
    'lightgray': '#d3d3d3', 'lightgreen': '#90ee90', 'lightgrey': '#d3d3d3',
    'lightpink': '#ffb6c1', 'lightsalmon': '#ffa07a', 'lightseagreen': '#20b2aa',
    'lightskyblue': '#87cefa', 'lightslategray': '#778899', 'lightslategrey': '#778899',
    'lightsteelblue': '#b0c4de', 'lightyellow': '#ffffe0', 'lime': '#00ff00',
    'limegreen': '#32cd32', 'linen': '#faf0e6', 'magenta': '#ff00ff', 'maroon': '#800000',
    'mediumaquamarine': '#66cdaa', 'mediumblue': '#0000cd', 'mediumorchid': '#ba55d3',
    'mediumpurple': '#9370db', 'mediumseagreen': '#3cb371', 'mediumslateblue': '#7b68ee',
    'mediumspringgreen': '#00fa9a', 'mediumturquoise': '#48d1cc',
    'mediumvioletred': '#c71585', 'midnightblue': '#191970', 'mintcream': '#f5fffa',
    'mistyrose': '#ffe4e1', 'moccasin': '#ffe4b5', 'navajowhite': '#ffdead',
    'navy': '#000080', 'oldlace': '#fdf5e6', 'olive': '#808000', 'olivedrab': '#6b8e23',
    'orange': '#ffa500', 'orangered': '#ff4500', 'orchid': '#da70d6',
    'palegoldenrod': '#eee8aa', 'palegreen': '#98fb98', 'paleturquoise': '#afeeee',
    'palevioletred': '#db7093', 'papayawhip': '#ffefd5', 'peachpuff': '#ffdab9',
    'peru': '#cd853f', 'pink': '#ffc0cb', 'plum': '#dda0dd', 'powderblue': '#b0e0e6',
    'purple': '#800080', 'rebeccapurple': '#663399', 'red': '#ff0000',
    'rosybrown': '#bc8f8f', 'royalblue': '#4169e1', 'saddlebrown': '#8b4513',
    'salmon': '#fa8072', 'sandybrown': '#f4a460', 'seagreen': '#2e8b57',
    'seashell': '#fff5ee', 'sienna': '#a0522d', 'silver': '#c0c0c0', 'skyblue': '#87ceeb',
    'slateblue': '#6a5acd', 'slategray': '#708090', 'slategrey': '#708090', 'snow': '#fffafa',
    'springgreen': '#00ff7f', 'steelblue': '#4682b4', 'tan': '#d2b48c', 'teal': '#008080',
    'thistle': '#d8bfd8', 'tomato': '#ff6347', 'turquoise': '#40e0d0', 'violet': '#ee82ee',
    'wheat': '#f5deb3', 'white': '#ffffff', 'whitesmoke': '#f5f5f5', 'yellow': '#ffff00',
    'yellowgreen': '#9acd32',
}

# Colour names catalogues use that CSS lacks (Kaggle fashion's baseColour has most of them).
# None: a colour value with no single colour ('multi'): matched by name only, never nearest.
EXTRA_COLOURS: Dict[str, Optional[str]] = {
    'offwhite': '#faf9f6', 'navyblue': '#000080', 'cream': '#fffdd0', 'charcoal': '#36454f',
    'mustard': '#e1ad01', 'burgundy': '#800020', 'rust': '#b7410e', 'peach': '#ffe5b4',
    'mauve': '#e0b0ff', 'taupe': '#483c32', 'copper': '#b87333', 'bronze': '#cd7f32',
    'nude': '#e3bc9a', 'lilac': '#c8a2c8', 'mint': '#98ff98', 'camel': '#c19a6b',
    'rose': '#ff66cc', 'skin': '#e8beac', 'scarlet': '#ff2400', 'emerald': '#50c878',
    'multi': None, 'multicolour': None, 'multicolor': None,
}

# word -> values it may mean, most specific first; only a target the vocabulary has is used.
SYNONYMS: Dict[str, Tuple[str, ...]] = {
    'bag': ('handbag', 'bag', 'tote'), 'purse': ('handbag', 'clutch', 'bag'),
    'tote': ('handbag', 'bag'), 'handbag': ('bag',),
    'tee': ('t-shirt', 'tshirt', 'tee', 'shirt'), 'teeshirt': ('t-shirt', 'tshirt'),
    'top': ('top', 't-shirt', 'tshirt'),
    'shirt': ('shirt', 't-shirt', 'tshirt'), 'tshirt': ('shirt',),
    'sneaker': ('sneakers', 'sneaker', 'sports shoes', 'casual shoes', 'shoes'),
    'trainer': ('sneakers', 'sneaker', 'sports shoes', 'casual shoes', 'shoes'),
    'shoe': ('shoes', 'sneakers', 'sneaker', 'casual shoes', 'sports shoes'),
    'kick': ('sneakers', 'sneaker', 'sports shoes', 'casual shoes'),
    'pant': ('trousers', 'pants', 'jeans'), 'slack': ('trousers', 'pants'),
    'trouser': ('pants',), 'gown': ('dress', 'dresses'), 'frock': ('dress', 'dresses'),
    'cup': ('mug', 'cup'), 'flask': ('bottle',), 'lantern': ('lamp',),
    'stripe': ('striped', 'stripes'), 'stripy': ('striped', 'stripes'),
    'dot': ('dotted', 'polka dots', 'dots'), 'polkadot': ('dotted', 'polka dots', 'dots'),
    'spot': ('dotted', 'dots'), 'spotted': ('dotted',), 'spotty': ('dotted',),
    'check': ('checked', 'checks'), 'checkered': ('checked', 'checks'),
    'checkerboard': ('checked',), 'chequered': ('checked', 'checks'),
    'plaid': ('checked', 'checks'), 'tartan': ('checked', 'checks'),
    'gingham': ('checked', 'checks'), 'plain': ('solid',), 'uni': ('solid',),
    'multicoloured': ('multi', 'multicolour', 'multicolor'),
    'multicolored': ('multi', 'multicolour', 'multicolor'),
}

# Ignored words (not values, not unknown): articles, prepositions, shopping filler.
STOP_WORDS = frozenset('''
a an the in on with of and or for to at by from as into some any my me i we you please show
give want need like looking find make made that this these those is are be it its one two
three pair pairs new nice very kind type style styled item items product products colour
color coloured colored pattern patterned patterns shade tone
'''.split())

# Attribute names that mean a colour attribute (compared without case and separators).
_COLOUR_ATTRIBUTE = re.compile(r'colou?r')

_INDIRECT = ('synonym', 'nearest catalogue colour')  # Readings whose note names the word read.
TEXTILE_KL = 2.0     # CIEDE2000's lightness weight for textiles: shade matters less than hue.
NEUTRAL_CHROMA = 8.0  # CIELAB chroma below which a colour reads as white/grey/black.
_MAX_WORDS = 4  # Longest run of words read as one value ("light goldenrod yellow").
_WORD = re.compile(r'[^\W_]+')  # Letters/digits; '-', '_' and spaces all separate words.


@dataclasses.dataclass(frozen=True)
class Parsed:
  """What a prompt says: attribute -> value (valid in the vocabulary), the words it could not
  place (as typed), and how the other words were read."""
  assignments: Dict[str, str]
  unknown: Tuple[str, ...]
  notes: Tuple[str, ...]

  def to_json(self) -> dict:
    return {'assignments': dict(self.assignments), 'unknown': list(self.unknown),
            'notes': list(self.notes)}


# ---- Colour math (pure) ----

def hex_to_rgb(code: str) -> Tuple[int, int, int]:
  code = code.lstrip('#')
  return tuple(int(code[i:i + 2], 16) for i in (0, 2, 4))


def srgb_to_lab(rgb) -> Tuple[float, float, float]:
  """8-bit sRGB -> CIELAB (D65 white), the space where distance follows perceived difference."""
  def linear(c):
    c = c / 255.0
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
  r, g, b = (linear(c) for c in rgb)
  x = (0.4124564 * r + 0.3575761 * g + 0.1804375 * b) / 0.95047
  y = (0.2126729 * r + 0.7151522 * g + 0.0721750 * b) / 1.0
  z = (0.0193339 * r + 0.1191920 * g + 0.9503041 * b) / 1.08883

  def f(t):
    return t ** (1 / 3) if t > (6 / 29) ** 3 else t / (3 * (6 / 29) ** 2) + 4 / 29
  fx, fy, fz = f(x), f(y), f(z)
  return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def delta_e(lab1, lab2, kl: float = 1.0) -> float:
  """CIEDE2000 colour difference (Sharma et al. 2005), kC = kH = 1; kL = 2 is the textile setting."""
  L1, a1, b1 = lab1
  L2, a2, b2 = lab2
  c_mean = (math.hypot(a1, b1) + math.hypot(a2, b2)) / 2
  g = 0.5 * (1 - math.sqrt(c_mean ** 7 / (c_mean ** 7 + 25 ** 7)))
  a1p, a2p = a1 * (1 + g), a2 * (1 + g)
  c1p, c2p = math.hypot(a1p, b1), math.hypot(a2p, b2)
  h1p = math.degrees(math.atan2(b1, a1p)) % 360 if c1p else 0.0
  h2p = math.degrees(math.atan2(b2, a2p)) % 360 if c2p else 0.0
  dl, dc = L2 - L1, c2p - c1p
  dh = 0.0
  if c1p * c2p:
    dh = h2p - h1p
    if dh > 180:
      dh -= 360
    elif dh < -180:
      dh += 360
  dH = 2 * math.sqrt(c1p * c2p) * math.sin(math.radians(dh / 2))
  l_mean, cp_mean = (L1 + L2) / 2, (c1p + c2p) / 2
  h_mean = h1p + h2p
  if c1p * c2p:
    if abs(h1p - h2p) <= 180:
      h_mean = (h1p + h2p) / 2
    else:
      h_mean = (h1p + h2p + 360) / 2 if h1p + h2p < 360 else (h1p + h2p - 360) / 2
  cos = lambda degrees: math.cos(math.radians(degrees))  # noqa: E731
  t = (1 - 0.17 * cos(h_mean - 30) + 0.24 * cos(2 * h_mean) + 0.32 * cos(3 * h_mean + 6)
       - 0.20 * cos(4 * h_mean - 63))
  d_theta = 30 * math.exp(-((h_mean - 275) / 25) ** 2)
  rc = 2 * math.sqrt(cp_mean ** 7 / (cp_mean ** 7 + 25 ** 7))
  sl = 1 + 0.015 * (l_mean - 50) ** 2 / math.sqrt(20 + (l_mean - 50) ** 2)
  sc = 1 + 0.045 * cp_mean
  sh = 1 + 0.015 * cp_mean * t
  rt = -math.sin(math.radians(2 * d_theta)) * rc
  return math.sqrt((dl / (kl * sl)) ** 2 + (dc / sc) ** 2 + (dH / sh) ** 2 + rt * (dc / sc) * (dH / sh))


def chroma(lab) -> float:
  return math.hypot(lab[1], lab[2])


def nearest_colour(lab, targets):
  """The target (name, Lab) nearest to `lab` by CIEDE2000, which weighs hue more than plain
  Euclidean CIELAB does (pink -> hotpink, not gray). A near-neutral colour has no hue to keep,
  so it goes to a near-neutral target when there is one (white -> gray, not a pale blue), and a
  coloured word to a coloured target (royalblue -> navy, not gray). Lightness counts half (kL = 2,
  as textile colour matching weighs it): a word names a hue more than a shade."""
  neutral = chroma(lab) < NEUTRAL_CHROMA
  same_kind = [t for t in targets if (chroma(t[1]) < NEUTRAL_CHROMA) == neutral]
  return min(same_kind or targets, key=lambda t: delta_e(t[1], lab, kl=TEXTILE_KL))[0]


def colour_hex(name: str) -> Optional[str]:
  """Hex of a colour name written in any case/with separators, None if not a known colour."""
  key = _compact(name)
  return CSS_COLOURS.get(key) or EXTRA_COLOURS.get(key)


def is_colour_name(name: str) -> bool:
  key = _compact(name)
  return key in CSS_COLOURS or key in EXTRA_COLOURS


# ---- Words ----

def _compact(text: str) -> str:
  return ''.join(_WORD.findall(text.lower()))


def _singulars(word: str) -> List[str]:
  """Forms a plural may come from: boxes -> box, bags -> bag, dresses -> dress, berries -> berry."""
  forms = []
  if len(word) > 4 and word.endswith('ies'):
    forms.append(word[:-3] + 'y')
  if len(word) > 3 and word.endswith('es'):
    forms.append(word[:-2])
  if len(word) > 3 and word.endswith('s') and not word.endswith('ss'):
    forms.append(word[:-1])
  return forms


def edit_distance(a: str, b: str) -> int:
  """Levenshtein distance with adjacent transpositions (optimal string alignment)."""
  prev2, prev = None, list(range(len(b) + 1))
  for i in range(1, len(a) + 1):
    cur = [i] + [0] * len(b)
    for j in range(1, len(b) + 1):
      cost = a[i - 1] != b[j - 1]
      cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
      if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
        cur[j] = min(cur[j], prev2[j - 2] + 1)
    prev2, prev = prev, cur
  return prev[-1]


def max_typos(length: int) -> int:
  """Edits a word of this length may have and still count as a typo: none below 5 letters
  (one edit turns "bold" into gold, "lamb" into lamp), one up to 6, two up to 9, else three."""
  return 0 if length < 5 else 1 if length <= 6 else 2 if length <= 9 else 3


# ---- The vocabulary's index ----

@dataclasses.dataclass(frozen=True)
class _Reading:
  attribute: str
  value: str
  how: str  # '' (literal), 'plural', 'synonym', 'nearest catalogue colour'
  also: Tuple[str, ...] = ()  # Other attributes that have this value too.


@dataclasses.dataclass(frozen=True)
class _Index:
  values: Dict[str, List[Tuple[str, str]]]       # compact value -> [(attribute, value)]
  singular_values: Dict[str, List[Tuple[str, str]]]
  colour_attribute: Optional[str]
  colour_targets: Tuple[Tuple[str, Tuple[float, float, float]], ...]  # (value, Lab)
  attribute_words: frozenset
  typo_words: Tuple[str, ...] = ()  # typo_candidates(), computed once per vocabulary

  def lookup_value(self, key: str) -> Optional[_Reading]:
    hits, how = self.values.get(key), ''
    for form in [key] + _singulars(key):
      if hits:
        break
      hits, how = self.values.get(form) or self.singular_values.get(form), 'plural'
    if not hits:
      return None
    return _Reading(*hits[0], how, tuple(a for a, _ in hits[1:]))

  def lookup_synonym(self, key: str) -> Optional[_Reading]:
    for form in [key] + _singulars(key):
      for target in SYNONYMS.get(form, ()):
        hit = self.lookup_value(_compact(target))  # 'handbag' also finds Handbags
        if hit:
          return _Reading(hit.attribute, hit.value, 'synonym')
    return None

  def lookup_colour(self, key: str) -> Optional[_Reading]:
    if not self.colour_targets:
      return None
    for form in [key] + _singulars(key):
      code = colour_hex(form)
      if code:
        lab = srgb_to_lab(hex_to_rgb(code))
        value = nearest_colour(lab, self.colour_targets)
        return _Reading(self.colour_attribute, value, 'nearest catalogue colour')
    return None

  def read(self, key: str) -> Optional[_Reading]:
    return self.lookup_value(key) or self.lookup_synonym(key) or self.lookup_colour(key)

  def typo_candidates(self) -> List[str]:
    """Words a typo is compared with, values first: values, usable synonyms, colour names
    (if any colour attribute; CSS has many short names, so only those of 5+ letters)."""
    words = sorted(set(self.values) | set(self.singular_values))
    words += sorted(w for w in SYNONYMS if w not in words)
    if self.colour_targets:
      words += sorted(w for w in list(CSS_COLOURS) + list(EXTRA_COLOURS)
                      if len(w) >= 5 and w not in words)
    return [w for w in words if self.read(w)]


def _is_colour_attribute(name: str, values) -> bool:
  return bool(_COLOUR_ATTRIBUTE.search(_compact(name))) or (
      sum(is_colour_name(v) for v in values) * 2 > len(values))


@functools.lru_cache(maxsize=32)
def _index(vocabulary: 'Vocabulary') -> _Index:
  values, singular_values = {}, {}
  colour_attribute, targets = None, []
  for name, attribute_values in vocabulary.attributes:
    for value in attribute_values:
      key = _compact(value)
      values.setdefault(key, []).append((name, value))
      for form in _singulars(key):
        singular_values.setdefault(form, []).append((name, value))
    if colour_attribute is None and _is_colour_attribute(name, attribute_values):
      colour_attribute = name
      targets = [(v, srgb_to_lab(hex_to_rgb(colour_hex(v)))) for v in attribute_values
                 if colour_hex(v)]
  attribute_words = {_compact(n) for n in vocabulary.names} | {'colour', 'color'}
  index = _Index(values, singular_values, colour_attribute if targets else None, tuple(targets),
                 frozenset(attribute_words))
  return dataclasses.replace(index, typo_words=tuple(index.typo_candidates()))


# ---- Parsing ----

def _span_text(text: str, words, i: int, j: int) -> str:
  return text[words[i].start():words[j - 1].end()]


def _read_typo(index: _Index, key: str):
  """(reading, corrected word) of a typo of one known word, or (None, why-not note)."""
  limit = max_typos(len(key))
  if not limit or key.isdigit():
    return None, None
  scored = []
  # Same first letter: typing slips rarely hit it, and it keeps real words apart.
  for word in index.typo_words:
    if abs(len(word) - len(key)) <= limit and word[0] == key[0]:
      d = min(edit_distance(form, word) for form in [key] + _singulars(key))
      if d <= limit:
        scored.append((d, word))
  if not scored:
    return None, None
  best = min(d for d, _ in scored)
  readings = {}
  for d, word in scored:  # In typo_words' order: a value beats a synonym with the same reading.
    if d == best:
      reading = index.read(word)
      readings.setdefault((reading.attribute, reading.value), (reading, word))
  if len(readings) > 1:
    options = ' or '.join(f'{a}={v}' for a, v in readings)
    return None, f'could mean {options}'
  return next(iter(readings.values()))


def parse(text: str, vocabulary: 'Vocabulary') -> Parsed:
  """Reads `text` against `vocabulary`; see the module docstring for the order of readings."""
  index = _index(vocabulary)
  words = list(_WORD.finditer(text))
  keys = [m.group().lower() for m in words]
  assignments: Dict[str, str] = {}
  claimed_by: Dict[str, str] = {}
  unknown: List[str] = []
  notes: List[str] = []

  def assign(reading: _Reading, typed: str, how: str):
    shown = f'{reading.attribute}={reading.value}'
    if how:
      notes.append(f'{typed} -> {reading.value} ({how})')
    if reading.also:  # The first attribute wins; say where else the word could have gone.
      notes.append(f'{typed!r} is also a value of {", ".join(reading.also)}; read as {shown}')
    if reading.attribute in assignments and assignments[reading.attribute] != reading.value:
      notes.append(f'{typed!r} replaces {claimed_by[reading.attribute]!r} for '
                   f'{reading.attribute} (the later word wins): {shown}')
    assignments[reading.attribute] = reading.value
    claimed_by[reading.attribute] = typed

  i = 0
  while i < len(words):
    longest = min(_MAX_WORDS, len(words) - i)
    # 1. The longest run of words that is a value, synonym or colour name.
    for n in range(longest, 0, -1):
      key = ''.join(keys[i:i + n])
      reading = index.read(key)
      if reading:
        assign(reading, _span_text(text, words, i, i + n), reading.how)
        i += n
        break
      if key in index.attribute_words:  # "colour red": the attribute's name says nothing more.
        i += n
        break
    else:
      typed = words[i].group()
      if keys[i] in STOP_WORDS:
        i += 1
        continue
      # 2. A typo of a known word: two words first ("navy blu"), then one.
      for n in range(min(2, longest), 0, -1):
        span = keys[i:i + n]
        if any(k in STOP_WORDS for k in span):
          continue
        reading, detail = _read_typo(index, ''.join(span))
        if reading:
          typed = _span_text(text, words, i, i + n)
          # "crimsen -> red (typo of crimson; nearest catalogue colour)", "stripd -> striped (typo)"
          how = f'typo of {detail}; {reading.how}' if reading.how in _INDIRECT else 'typo'
          assign(reading, typed, how)
          i += n
          break
        if detail and n == 1:
          notes.append(f'{typed} {detail}; say which')
      else:
        unknown.append(typed)
        i += 1
  ordered = {name: assignments[name] for name in vocabulary.names if name in assignments}
  return Parsed(ordered, tuple(unknown), tuple(notes))
