"""The free-text attribute parser (gan/control/prompt.py) and `gan.sample --prompt`."""
import os

import numpy as np
import pytest
from PIL import Image, ImageColor

from gan import sample as sample_cli
from gan.control import prompt
from gan.data import render
from gan.data.vocab import Vocabulary
from tests.conftest import run_tool

# The synthetic catalogue's vocabulary, as its TFDS builder declares it.
SYNTHETIC = Vocabulary.from_dict({'category': render.CATEGORIES, 'colour': list(render.COLOURS),
                                  'pattern': render.PATTERNS})
# A Kaggle-fashion-like catalogue: other attribute names, capitalised plural and two-word values.
KAGGLE = Vocabulary.from_dict({
    'gender': ['Men', 'Women', 'Unisex'],
    'articleType': ['Tshirts', 'Shirts', 'Handbags', 'Casual Shoes', 'Sports Shoes', 'Jeans',
                    'Dresses', 'Watches'],
    'baseColour': ['Navy Blue', 'Red', 'Off White', 'Black', 'White', 'Blue', 'Grey', 'Multi',
                   'Beige', 'Olive'],
    'usage': ['Casual', 'Formal'],
})
# Values written with '_' and '-', and a colour attribute recognised by its values alone.
UNDERSCORED = Vocabulary.from_dict({'kind': ['t-shirt', 'tank_top', 'polo'],
                                    'shade': ['light_blue', 'dark_green', 'white', 'navy']})


def _assign(text, vocabulary):
  return prompt.parse(text, vocabulary).assignments


@pytest.mark.parametrize('text, expected', [
    ('crimson striped handbag', dict(category='handbag', colour='red', pattern='striped')),
    ('navy sneakers', dict(category='sneaker', colour='navy')),
    ('a red T-Shirt with dots', dict(category='t-shirt', colour='red', pattern='dotted')),
    ('tee', dict(category='t-shirt')),
    ('tshirts', dict(category='t-shirt')),
    ('t shirt', dict(category='t-shirt')),
    ('bags', dict(category='handbag')),
    ('dresses in gold', dict(category='dress', colour='gold')),
    ('trainers', dict(category='sneaker')),
    ('stripd handbg', dict(category='handbag', pattern='striped')),
    ('chekced purpel mugs', dict(category='mug', colour='purple', pattern='checked')),
    ('crimsen bottle', dict(category='bottle', colour='red')),
    ('grey lamp', dict(category='lamp', colour='gray')),
    ('light blue trousers', dict(category='trousers', colour='deepskyblue')),
    ('navy blue plaid dress', dict(category='dress', colour='navy', pattern='checked')),
    ('colour: teal, pattern = solid', dict(colour='teal', pattern='solid')),
    ('red blue', dict(colour='navy')),  # The later word wins.
    ('', {}),
    ('the a in with', {}),
])
def test_synthetic_catalogue_phrases(text, expected):
  assert _assign(text, SYNTHETIC) == expected


@pytest.mark.parametrize('text, expected', [
    ('crimson handbag', dict(articleType='Handbags', baseColour='Red')),
    ('navy sneakers', dict(articleType='Sports Shoes', baseColour='Navy Blue')),
    ('navy blue casual shoes', dict(articleType='Casual Shoes', baseColour='Navy Blue')),
    ('off-white tee for women', dict(gender='Women', articleType='Tshirts',
                                     baseColour='Off White')),
    ('t-shirt', dict(articleType='Tshirts')),
    ('a bag', dict(articleType='Handbags')),
    ('mens formal watch', dict(gender='Men', articleType='Watches', usage='Formal')),
    ('multicoloured dress', dict(articleType='Dresses', baseColour='Multi')),
    ('olive jeanz', dict(articleType='Jeans', baseColour='Olive')),
    ('scarlet shirt', dict(articleType='Shirts', baseColour='Red')),
])
def test_other_vocabulary_phrases(text, expected):
  assert _assign(text, KAGGLE) == expected


@pytest.mark.parametrize('text, expected', [
    ('light blue tank top', dict(kind='tank_top', shade='light_blue')),
    ('dark green tshirt', dict(kind='t-shirt', shade='dark_green')),
    ('forest green polos', dict(kind='polo', shade='dark_green')),
    ('navy', dict(shade='navy')),
])
def test_separators_and_colour_attribute_found_by_its_values(text, expected):
  assert _assign(text, UNDERSCORED) == expected


@pytest.mark.parametrize('vocabulary, text, unknown', [
    (SYNTHETIC, 'xyzzy handbag', ('xyzzy',)),
    (SYNTHETIC, 'wooden spaceship', ('wooden', 'spaceship')),
    # One edit away from gold/lamp/teal, but short real words must not drift.
    (SYNTHETIC, 'bold lamb tall red', ('bold', 'lamb', 'tall')),
    (SYNTHETIC, 'casual shoes', ('casual',)),
    (SYNTHETIC, '2 leather boxes', ('2', 'leather', 'boxes')),
    (SYNTHETIC, 'multicoloured mug', ('multicoloured',)),  # No such colour here.
    (KAGGLE, 'striped lamp', ('striped', 'lamp')),
    (KAGGLE, 'Banana-Bag', ('Banana',)),
    (UNDERSCORED, 'crimson cap', ('cap',)),  # 'cap' has no synonym target in this vocabulary.
])
def test_unplaced_words_are_reported_as_typed(vocabulary, text, unknown):
  parsed = prompt.parse(text, vocabulary)
  assert parsed.unknown == unknown
  for name, value in parsed.assignments.items():  # Whatever it did place is valid.
    assert value in vocabulary.values(name)


def test_notes_say_how_words_were_read():
  parsed = prompt.parse('crimson sneakers stripd bag red', SYNTHETIC)
  assert parsed.notes == (
      'crimson -> red (nearest catalogue colour)', 'sneakers -> sneaker (plural)',
      'stripd -> striped (typo)', 'bag -> handbag (synonym)',
      "'bag' replaces 'sneakers' for category (the later word wins): category=handbag")
  assert parsed.to_json() == {
      'assignments': {'category': 'handbag', 'colour': 'red', 'pattern': 'striped'},
      'unknown': [], 'notes': list(parsed.notes)}
  assert prompt.parse('crimsen', SYNTHETIC).notes == (
      'crimsen -> red (typo of crimson; nearest catalogue colour)',)


def test_value_of_two_attributes_goes_to_the_first_with_a_note():
  vocabulary = Vocabulary.from_dict({'upper': ['red', 'cotton'], 'lower': ['blue', 'cotton']})
  parsed = prompt.parse('Cotton', vocabulary)
  assert parsed.assignments == {'upper': 'cotton'}
  assert parsed.notes == ("'Cotton' is also a value of lower; read as upper=cotton",)


def test_synonyms_only_reach_values_the_vocabulary_has():
  no_bags = Vocabulary.from_dict({'category': ['mug', 'lamp']})
  assert prompt.parse('bag', no_bags).unknown == ('bag',)
  plain_bag = Vocabulary.from_dict({'category': ['bag', 'mug']})
  assert _assign('handbag', plain_bag) == {'category': 'bag'}


def test_colour_words_need_a_colour_attribute():
  vocabulary = Vocabulary.from_dict({'category': ['mug', 'lamp'], 'size': ['small', 'large']})
  parsed = prompt.parse('crimson large mug', vocabulary)
  assert parsed.assignments == {'category': 'mug', 'size': 'large'}
  assert parsed.unknown == ('crimson',)


# ---- Colours ----

def test_css_table_is_complete():
  assert len(prompt.CSS_COLOURS) == 148
  assert prompt.CSS_COLOURS == {k: v.lower() for k, v in ImageColor.colormap.items()}


def test_cielab_conversion_matches_reference_values():
  # Reference values (D65): white, black, sRGB red.
  np.testing.assert_allclose(prompt.srgb_to_lab((255, 255, 255)), (100, 0, 0), atol=0.01)
  np.testing.assert_allclose(prompt.srgb_to_lab((0, 0, 0)), (0, 0, 0), atol=0.01)
  np.testing.assert_allclose(prompt.srgb_to_lab((255, 0, 0)), (53.24, 80.09, 67.20), atol=0.05)


@pytest.mark.parametrize('lab1, lab2, expected', [  # Sharma, Wu & Dalal (2005), table 1.
    ((50, 2.6772, -79.7751), (50, 0, -82.7485), 2.0425),
    ((50, 2.5, 0), (73, 25, -18), 27.1492),
    ((50, 2.49, -0.001), (50, -2.49, 0.0009), 7.1792),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
])
def test_ciede2000_matches_published_pairs(lab1, lab2, expected):
  assert prompt.delta_e(lab1, lab2) == pytest.approx(expected, abs=1e-4)
  assert prompt.delta_e(lab2, lab1) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize('word, nearest', [
    ('crimson', 'red'), ('tomato', 'red'), ('salmon', 'red'), ('orange', 'darkorange'),
    ('yellow', 'gold'), ('khaki', 'gold'), ('green', 'limegreen'), ('darkcyan', 'teal'),
    ('skyblue', 'deepskyblue'), ('midnightblue', 'navy'), ('blue', 'navy'), ('pink', 'hotpink'),
    ('magenta', 'hotpink'), ('rebeccapurple', 'purple'), ('maroon', 'saddlebrown'),
    ('navy', 'navy'), ('grey', 'gray'), ('silver', 'gray'),
    ('white', 'gray'), ('snow', 'gray'),  # Neutral words stay neutral (no hue to invent).
    ('royalblue', 'navy'), ('indigo', 'navy'), ('cyan', 'teal'),  # Coloured words stay coloured.
])
def test_colour_words_map_to_nearest_catalogue_colour(word, nearest):
  assert _assign(word, SYNTHETIC) == {'colour': nearest}


def test_nearest_colour_when_the_named_one_is_missing():
  vocabulary = Vocabulary.from_dict({'color': ['red', 'blue', 'white']})
  assert _assign('navy', vocabulary) == {'color': 'blue'}
  assert _assign('crimson', vocabulary) == {'color': 'red'}


def test_edit_distance_and_typo_budget():
  assert prompt.edit_distance('stripd', 'striped') == 1
  assert prompt.edit_distance('chekced', 'checked') == 1  # A transposition is one edit.
  assert prompt.edit_distance('', 'abc') == 3
  assert [prompt.max_typos(n) for n in (2, 4, 5, 6, 7, 9, 10)] == [0, 0, 1, 1, 2, 2, 3]


# ---- gan.sample --prompt ----

def test_sample_prompt(trained_run_dir, tmp_path):
  """The prompt fills attributes, --attr overrides it, unknown words are a warning; the images
  are the ones the same attributes given as --attr make."""
  proc = run_tool(['-m', 'gan.sample', f'--workdir={trained_run_dir}', '--num', '2',
                   '--prompt', 'crimson striped handbg zorblax', '--attr', 'pattern=dotted',
                   '--out-dir', str(tmp_path / 'prompt')])
  assert proc.returncode == 0, proc.stderr[-4000:]
  assert 'prompt: crimson -> red (nearest catalogue colour)' in proc.stdout
  assert 'prompt: --attr pattern=dotted overrides striped' in proc.stdout
  assert 'prompt: category=handbag colour=red pattern=dotted' in proc.stdout
  assert 'wrote 2 images' in proc.stdout
  warning = [line for line in proc.stderr.splitlines() if 'warning' in line]
  assert len(warning) == 1 and 'zorblax' in warning[0] and 'Valid values: category:' in warning[0]

  code = sample_cli.main([f'--workdir={trained_run_dir}', '--num', '2', '--attr',
                          'category=handbag', '--attr', 'colour=red', '--attr', 'pattern=dotted',
                          '--out-dir', str(tmp_path / 'attr')])
  assert code == 0
  for name in ('sample_000.png', 'sample_001.png'):
    a, b = (np.asarray(Image.open(tmp_path / d / name)) for d in ('prompt', 'attr'))
    np.testing.assert_array_equal(a, b)


def test_sample_prompt_with_no_known_word_is_a_usage_error(trained_run_dir, tmp_path, capsys):
  code = sample_cli.main([f'--workdir={trained_run_dir}', '--prompt', 'the zorblax',
                          '--out', str(tmp_path / 'x.png')])
  err = capsys.readouterr().err
  assert code == 2
  assert "--prompt 'the zorblax' names no attribute value" in err
  assert 'not understood: zorblax' in err and 'Valid values: category: t-shirt' in err
  assert not os.path.exists(tmp_path / 'x.png')
