"""automm: plugin-based multimodal AutoML (images + texts + tables) on PyTorch.

>>> from automm import AutoMM
>>> clf = AutoMM(random_state=0).fit(X_img, X_txt, y)   # doctest: +SKIP
"""

from .hookspecs import hookimpl
from .exceptions import (AutoMMError, InputError, ModelFormatError, NotFittedError, PluginError, SearchError,
                         TimeLimitExceeded, UnknownComponentError)
from .deadlines import check_deadline, time_left
from .components.base import MISSING, Augmentation, BatchAugmentation, Encoder, Fusion
from .registry import (create_augmentation, create_encoder, create_fusion, get_registry, list_augmentations,
                       list_datasets, list_encoders, list_fusions, load_dataset, reset_registry)
from .estimator import AutoMM, AutoMMClassifier, AutoMMRegressor
from .folders import read_image_folder

__version__ = "0.1.0"

__all__ = [
    "AutoMM", "AutoMMClassifier", "AutoMMRegressor",
    "Encoder", "Fusion", "Augmentation", "BatchAugmentation", "MISSING", "hookimpl",
    "list_encoders", "list_fusions", "list_augmentations", "list_datasets", "load_dataset",
    "create_encoder", "create_fusion", "create_augmentation", "get_registry", "reset_registry",
    "check_deadline", "time_left", "read_image_folder",
    "AutoMMError", "InputError", "ModelFormatError", "NotFittedError", "PluginError", "SearchError", "TimeLimitExceeded",
    "UnknownComponentError",
    "__version__",
]
