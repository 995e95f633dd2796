"""Tests for gan/spec.py: one op language for data.augment, diffaug and --postprocess."""
import pytest

from gan import spec as spec_lib
from gan.control import postprocess
from gan.data import augment, diffaug
from gan.registry import Registry

OPS = Registry('test op')
for _name in ('blur', 'crop'):
  OPS.register(_name)(lambda size=1, fill='white': None)
SPEC = spec_lib.OpSpec(OPS, lambda fn: ['size', 'fill'], example='blur(size=2)')


def test_forms_and_values():
  want = [('blur', {}), ('crop', {'size': 3, 'fill': 'edge'}), ('blur', {'size': (1, 2)})]
  for spec in ['blur, crop(size=3, fill=edge) | blur(size=(1, 2))',
               ['blur', "crop(size=3, fill='edge')", 'blur(size=(1, 2))'],
               ['BLUR,Crop(size=3, fill=edge)', 'blur(size=(1, 2))']]:
    assert SPEC.parse(spec) == want
  assert SPEC.parse(None) == SPEC.parse('') == SPEC.parse([]) == SPEC.parse(' , | ') == []
  assert SPEC.names('crop | blur') == ['crop', 'blur']


@pytest.mark.parametrize('spec, pattern', [
    ('blur, sharpen', r"Unknown test op 'sharpen' in 'blur, sharpen'\. Valid test op names: "
                      r"blur, crop; e\.g\. 'blur\(size=2\)'"),
    ('crop(width=2)', r"Test op 'crop' has no argument\(s\) width\. Valid arguments: size, fill"),
    ('crop(2)', r'pass arguments by name'),
    ('crop(size=2', r"Unbalanced parentheses in test op spec 'crop\(size=2'"),
    ('crop size', r"Cannot parse test op 'crop size'"),
    ('crop(size=len(x))', r'must be literals'),
    ('crop(**x)', r'\*\*kwargs'),
    (3, r'must be a string or a list of strings'),
    (['blur', 3], r'entries must be strings'),
])
def test_errors_name_the_bad_op_or_argument(spec, pattern):
  with pytest.raises(ValueError, match=pattern):
    SPEC.parse(spec)


def test_no_argument_ops_refuse_arguments():
  with pytest.raises(ValueError, match=r"'upscale2' has no argument.*Valid arguments: \(none\)"):
    postprocess.parse('upscale2(factor=3)')


def test_the_three_users_share_the_language():
  """Each user accepts the others' spellings: lists, pipes, commas, any case."""
  assert augment.parse_spec('Flip | zoom(max_scale=1.2)') == [('flip', {}),
                                                              ('zoom', {'max_scale': 1.2})]
  assert diffaug.parse_policy('Color | cutout') == ('color', 'cutout')
  assert postprocess.parse('Sharpen | upscale2') == ['sharpen', 'upscale2']
  assert postprocess.parse(['denoise', 'sharpen,upscale2']) == ['denoise', 'sharpen', 'upscale2']
  with pytest.raises(ValueError, match=r"Unknown augmentation 'blur'.*Valid augmentation names"):
    augment.parse_spec(['flip', 'blur'])


@pytest.mark.parametrize('field, value, pattern', [
    ('data.augment', ('flip', 'zoom(scale=2)'), r"'zoom' has no argument\(s\) scale"),
    ('diffaug', 'color,flip', r"Unknown DiffAugment policy 'flip'.*Valid policies: color"),
])
def test_config_validation_names_the_bad_op(field, value, pattern):
  from gan import train
  from tests.conftest import tiny_config
  with pytest.raises(ValueError, match=pattern):
    train.validate_config(tiny_config(**{field: value}))
