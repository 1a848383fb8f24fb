"""automm: plugin-based multimodal AutoML (images + texts + tables) on PyTorch.

>>> from automm import AutoMM
>>> clf = AutoMM(random_state=0).fit(X_img, X_txt, y)   # doctest: +SKIP
"""

import importlib as _importlib
from typing import TYPE_CHECKING

from .hookspecs import hookimpl

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time each name loads on first use (below)
    from .components.base import MISSING, Augmentation, BatchAugmentation, Encoder, Fusion
    from .deadlines import check_deadline, time_left
    from .estimator import AutoMM, AutoMMClassifier, AutoMMRegressor
    from .exceptions import (AutoMMError, AutoMMWarning, InputError, ModelFormatError, NotFittedError, PluginError,
                             SearchError, TimeLimitExceeded, UnknownComponentError)
    from .folders import read_image_folder
    from .registry import (PluginLoadWarning, create_augmentation, create_encoder, create_fusion, get_registry,
                           list_augmentations, list_datasets, list_encoders, list_fusions, load_dataset, reset_registry)
    from .training import Callback

__version__ = "0.1.0"

#: Public names and the module each comes from, imported on first use (PEP 562): ``import automm``
#: and the command line's ``--help`` and ``--version`` do not import torch and scikit-learn
#: (seconds on a loaded machine: ``automm --version`` took 8.8 s, now a fraction of one).
_EXPORTS = {
    **dict.fromkeys(("AutoMMError", "InputError", "ModelFormatError", "NotFittedError", "PluginError", "SearchError",
                     "TimeLimitExceeded", "UnknownComponentError", "AutoMMWarning"), "exceptions"),
    **dict.fromkeys(("check_deadline", "time_left"), "deadlines"),
    **dict.fromkeys(("MISSING", "Augmentation", "BatchAugmentation", "Encoder", "Fusion"), "components.base"),
    **dict.fromkeys(("create_augmentation", "create_encoder", "create_fusion", "get_registry", "list_augmentations",
                     "list_datasets", "list_encoders", "list_fusions", "load_dataset", "reset_registry",
                     "PluginLoadWarning"), "registry"),
    **dict.fromkeys(("AutoMM", "AutoMMClassifier", "AutoMMRegressor"), "estimator"),
    "read_image_folder": "folders",
    "Callback": "training",
}


if not TYPE_CHECKING:  # (a type checker reads a module's __getattr__ as any name existing: a misspelt one too)
    def __getattr__(name: str):
        module = _EXPORTS.get(name)
        if module is None:
            try:  # a submodule not imported yet (automm.pipeline after a bare import automm)
                return _importlib.import_module(f"{__name__}.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{__name__}.{name}":
                    raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(_importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    hidden = {"TYPE_CHECKING"}  # (the module's own machinery, not its API)
    shown = (n for n in globals() if n not in hidden and (not n.startswith("_") or n == "__version__"))
    return sorted({*shown, *_EXPORTS})


__all__ = [
    "AutoMM", "AutoMMClassifier", "AutoMMRegressor", "Callback",
    "Encoder", "Fusion", "Augmentation", "BatchAugmentation", "MISSING", "hookimpl",
    "list_encoders", "list_fusions", "list_augmentations", "list_datasets", "load_dataset",
    "create_encoder", "create_fusion", "create_augmentation", "get_registry", "reset_registry",
    "check_deadline", "time_left", "read_image_folder",
    "AutoMMError", "AutoMMWarning", "InputError", "ModelFormatError", "NotFittedError", "PluginError", "SearchError",
    "TimeLimitExceeded", "UnknownComponentError", "PluginLoadWarning",
    "__version__",
]
