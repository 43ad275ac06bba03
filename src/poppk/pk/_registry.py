"""The kernel registry: structural models by the name a spec's ``[model] kernel`` or ``--model`` uses.

A kernel registers itself where it is defined, with one decorator line::

    @register_kernel("oral1cmt")
    class Oral1Cmt(AbstractPKModel): ...

so a new structural model is one new file (``pk/models/NAME.py``, found and imported by
:mod:`poppk.pk.models`) or, for a user's own kernel, a class registered in their own file, which a
model spec names (``[model] file = "my_model.py"``) and :func:`load_kernel_file` imports.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
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
        if known is not None and known is not cls:
            user = "poppk_user_kernels_"
            # The same class defined again (a module or a user's edited model file imported again)
            # replaces itself; a user's file never replaces a bundled kernel.
            again = known.__qualname__ == cls.__qualname__ and (
                known.__module__ == cls.__module__ or (known.__module__.startswith(user) and cls.__module__.startswith(user)))
            if not again:
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


_LOADED: dict[tuple[str, str], list[str]] = {}


def load_kernel_file(path: str | Path) -> list[str]:
    """Import a user's Python file of kernels (each registered with :func:`register_kernel`); the
    names it registered. A file is imported once per content (a changed file is imported again).

    Raises
    ------
    ModelSpecError
        The file does not exist, fails to import (the error is named), or registers no kernel.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise ModelSpecError(f"no such model file: {path}")
    text = path.read_bytes()
    key = (str(path), hashlib.sha256(text).hexdigest())
    if key in _LOADED:
        return _LOADED[key]
    before = {name: cls for name, cls in _KERNELS.items()}
    module_name = f"poppk_user_kernels_{key[1][:16]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclass-based classes (equinox) look their module up
    try:
        spec.loader.exec_module(module)
    except ModelSpecError:
        raise
    except Exception as exc:  # the user's code: name the file and the error, not poppk's traceback
        sys.modules.pop(module_name, None)
        raise ModelSpecError(f"{path}: importing the model file failed: {type(exc).__name__}: {exc}") from None
    names = [name for name, cls in _KERNELS.items() if before.get(name) is not cls]
    if not names:
        raise ModelSpecError(f"{path} registers no kernel; decorate a kernel class with @poppk.pk.register_kernel(\"NAME\")")
    _LOADED[key] = names
    return names


def kernel_name(kernel) -> str:
    """The registered name of ``kernel`` (a class or an instance); its class name if unregistered."""
    cls = kernel if isinstance(kernel, type) else type(kernel)
    return next((name for name, known in _KERNELS.items() if known is cls), cls.__name__)
