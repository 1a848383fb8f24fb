"""automm: plugin-based multimodal AutoML (images + texts + tables) on PyTorch.

>>> from automm import AutoMM
>>> clf = AutoMM(random_state=0).fit(X_img, X_txt, y)   # doctest: +SKIP
"""

import importlib

from .hookspecs import hookimpl

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
                     "list_datasets", "list_encoders", "list_fusions", "load_dataset", "reset_registry"), "registry"),
    **dict.fromkeys(("AutoMM", "AutoMMClassifier", "AutoMMRegressor"), "estimator"),
    "read_image_folder": "folders",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        try:  # a submodule not imported yet (automm.pipeline after a bare import automm)
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__all__ = [
    "AutoMM", "AutoMMClassifier", "AutoMMRegressor",
    "Encoder", "Fusion", "Augmentation", "BatchAugmentation", "MISSING", "hookimpl",
    "list_encoders", "list_fusions", "list_augmentations", "list_datasets", "load_dataset",
    "create_encoder", "create_fusion", "create_augmentation", "get_registry", "reset_registry",
    "check_deadline", "time_left", "read_image_folder",
    "AutoMMError", "AutoMMWarning", "InputError", "ModelFormatError", "NotFittedError", "PluginError", "SearchError",
    "TimeLimitExceeded", "UnknownComponentError",
    "__version__",
]
