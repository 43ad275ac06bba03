"""The kernel registry: structural models by the name a spec's ``[model] kernel`` or ``--model`` uses.

A kernel registers itself where it is defined, with one decorator line::

    @register_kernel("oral1cmt")
    class Oral1Cmt(AbstractPKModel): ...

so a new structural model is one new file (``pk/models/NAME.py``, found and imported by
:mod:`poppk.pk.models`) or, for a user's own kernel, a class registered in their own code.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar, TypeVar  # noqa: F401 - ClassVar: the doctest's kernel is annotated with it

from ..errors import ModelSpecError

_KERNELS: dict[str, type] = {}
#: Registered kernels by name (read-only; add one with :func:`register_kernel`).
KERNELS: Mapping[str, type] = MappingProxyType(_KERNELS)

K = TypeVar("K", bound=type)


def register_kernel(name: str):
    """Class decorator: register a structural kernel under ``name``.

    Raises
    ------
    ModelSpecError
        ``name`` is taken by another class, or the class does not declare its ``parameters``.

    Examples
    --------
    >>> from typing import ClassVar
    >>> import jax.numpy as jnp
    >>> from poppk.pk import AbstractPKModel, register_kernel, KERNELS
    >>> @register_kernel("doctest_constant")
    ... class Constant(AbstractPKModel):
    ...     parameters: ClassVar[tuple[str, ...]] = ("C0",)
    ...     units: ClassVar[dict[str, str]] = {"C0": "conc"}
    ...     def concentrations(self, params, doses, sampling):
    ...         return jnp.full(sampling.time.shape, params["C0"])
    >>> KERNELS["doctest_constant"] is Constant
    True
    """
    def register(cls: K) -> K:
        if not getattr(cls, "parameters", ()):
            raise ModelSpecError(f"kernel {cls.__name__} ({name!r}) declares no parameters")
        known = _KERNELS.get(name)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise ModelSpecError(f"kernel name {name!r} is taken by {known.__module__}.{known.__qualname__}")
        _KERNELS[name] = cls
        return cls

    return register


def kernel_class(name: str) -> type:
    """The registered kernel class called ``name``; ModelSpecError listing the known ones otherwise.

    The bundled models are registered when :mod:`poppk.pk` is imported (it imports :mod:`poppk.pk.models`).
    """
    try:
        return _KERNELS[name]
    except KeyError:
        raise ModelSpecError(f"unknown structural model {name!r}; choose one of {', '.join(sorted(_KERNELS))}") from None
