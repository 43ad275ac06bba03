"""Model specifications (TOML) and the NumPyro models built from them."""

from ._build import BuiltModel as BuiltModel
from ._build import build_model as build_model
from ._likelihood import PKResidual as PKResidual
from ._spec import ModelSpec as ModelSpec
from ._spec import load_spec as load_spec
from ._spec import parse_spec as parse_spec

__all__ = ["BuiltModel", "ModelSpec", "PKResidual", "build_model", "load_spec", "parse_spec"]
