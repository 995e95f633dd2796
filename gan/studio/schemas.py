"""The JSON shapes of the studio's API requests (pydantic: validated, and documented at /docs).

Ranges that depend only on the studio are checked here; names and values that depend on the run
(attributes, values, number of edit directions) are checked by the engine against the run.
"""
from typing import Dict, List, Optional

from pydantic import BaseModel, ConfigDict, Field

from gan.studio import engine

Attributes = Dict[str, str]
ATTRIBUTES_DOC = ('Attribute name -> value name, from /api/info; "any" (or leaving the attribute '
                  'out) lets the model choose as the catalogue does.')


class _Strict(BaseModel):
  model_config = ConfigDict(extra='forbid')  # A misspelt field is an error, not ignored.


class ProductRef(_Strict):
  """A product, as /api/generate and /api/sweep return it."""
  seed: int = Field(ge=0, le=engine.MAX_SEED)
  index: int = Field(0, ge=0, le=engine.MAX_INDEX,
                     description='Which latent of the seed (the n-th product of /api/generate).')
  truncation: float = Field(engine.DEFAULT_TRUNCATION, ge=0, le=engine.MAX_TRUNCATION,
                            description='0 = no truncation.')
  attributes: Attributes = Field(default_factory=dict, max_length=64, description=ATTRIBUTES_DOC)


class GenerateRequest(_Strict):
  attributes: Attributes = Field(default_factory=dict, max_length=64, description=ATTRIBUTES_DOC)
  seed: int = Field(0, ge=0, le=engine.MAX_SEED)
  count: int = Field(16, ge=1, le=engine.MAX_COUNT)
  truncation: float = Field(engine.DEFAULT_TRUNCATION, ge=0, le=engine.MAX_TRUNCATION,
                            description='Lower: more typical products, less variety. 0 = none.')


class SweepRequest(_Strict):
  product: ProductRef
  attribute: str = Field(max_length=200, description='The attribute to vary.')


class EditRequest(_Strict):
  product: ProductRef
  strengths: List[float] = Field(
      default_factory=list, max_length=64,
      description=f'One strength per edit direction (strongest first; /api/info lists them), '
      f'each in [-{engine.SLIDER_RANGE:g}, {engine.SLIDER_RANGE:g}].')


class InterpolateRequest(_Strict):
  product: ProductRef
  to: ProductRef
  frames: int = Field(8, ge=2, le=engine.MAX_FRAMES)


class ParseRequest(_Strict):
  text: str = Field(max_length=500, description='e.g. "crimson striped handbag".')


class VariantsRequest(_Strict):
  attributes: Attributes = Field(
      default_factory=dict, max_length=64,
      description='Attributes to change; "any" or left out keeps the value the inversion found.')
  sweep: Optional[str] = Field(None, max_length=200,
                               description='Also show every value of this attribute.')
