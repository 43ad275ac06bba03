"""The bundled structural models, one file each; importing this package registers every one.

Each module here defines one kernel and registers it (:func:`poppk.pk.register_kernel`); this
package imports whatever modules it holds, so adding a model is adding its file.
"""

from __future__ import annotations

import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
