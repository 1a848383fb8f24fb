"""The pretrained encoders ``minilm`` (text) and ``efficientnet_lite0`` (image).

Each runs in one of two modes, chosen by the hyperparameter ``trainable_layers``:

* ``0`` — **frozen** (``encoder.frozen is True``): the network never changes, so each
  input's feature vector is computed once and cached on disk (see :mod:`automm.feature_cache`). The
  core calls :meth:`~automm.Encoder.prepare` with every value of the input before
  building its loaders; ``prepare`` computes the missing features in batches (texts
  sorted by length) and keeps them in memory, ``preprocess`` looks a value's features up
  by its content digest and ``forward`` passes them through. The module then has no
  parameters: a saved model holds no copy of the pretrained weights, only their SHA-256,
  which :meth:`set_state` checks against the installed weight package (a mismatch raises
  :class:`~.weights.WeightsMismatchError` rather than silently producing other features).
  Sample augmentations do not apply to a frozen encoder (its features are fixed); batch
  augmentations (modality dropout, mixup) still do. What predicting new data costs is still
  reported, for the search's ``params`` and ``latency`` objectives: the shared network's weights
  (:meth:`~PretrainedEncoder.external_parameters`) and the time per value to compute features
  (:meth:`~PretrainedEncoder.prepare_seconds`, timed once per process on a few values).
* ``N > 0`` — **fine-tuning**: the encoder owns a copy of the network, trains its top
  ``N`` layers (MiniLM: transformer layers; EfficientNet: the head, then MBConv blocks
  from the top) at the head's learning rate times ``learning_rate_scale``, and runs the rest
  without gradients and in eval mode (BatchNorms stay in eval mode in the trained layers too:
  their running statistics are not updated). Only the trained
  layers are part of the model's ``state_dict`` and so of the saved ``weights.safetensors``
  (MiniLM with 2 trained layers: 19 MB rather than 105 MB); the rest comes from the weights
  package when the model is built, and a model whose package's weights differ is refused.
  Models saved with the whole network still load.

Preprocessing belongs to the encoder: MiniLM uses the checkpoint's own WordPiece
tokeniser (lower-casing, [CLS]/[SEP], truncation to ``max_length``) and mean pooling over
real tokens (then L2 normalisation when ``normalize``); EfficientNet-Lite0 resizes to
``image_size`` squared (bilinear, no crop: product photos keep their edges) and normalises
with the ImageNet mean/std (``normalization="imagenet"``) or the (x - 127) / 128 of the
original TF-Lite training (``"lite"``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import unicodedata
from collections import Counter
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from automm.components.base import MISSING, Encoder
from automm.devices import compute_device
from automm.deadlines import check_deadline
from automm.components.image_cache import suspend_image_cache
from automm.exceptions import InputError
from automm.feature_cache import FeatureCache, resolve_cache_dir

from .heap import heap_allocations
from .weights import WeightsMismatchError, file_sha256, package_version, weights_location

__all__ = ["PretrainedEncoder", "MiniLMEncoder", "EfficientNetLite0Encoder", "minilm_search_space",
           "efficientnet_lite0_search_space", "MINILM_DEFAULTS", "EFFICIENTNET_LITE0_DEFAULTS",
           "shared_backbone", "clear_shared_backbones", "trainable_layer_choices", "fine_tuning_space",
           "DEFAULT_LEARNING_RATE_SCALE", "LEARNING_RATE_SCALE_RANGE"]

log = logging.getLogger("automm.pretrained")  # shown by AutoMM(verbose>=1): automm.progress

#: Bump when preprocessing code changes in a way that changes features (invalidates caches).
FEATURE_VERSION = 1

_LAST = object()  # feature_cache(): the cache the last prepare used

_backbones: dict[tuple, nn.Module] = {}
_backbones_lock = threading.Lock()

#: How many values :meth:`PretrainedEncoder.prepare_seconds` times on the CPU (an encoder class may
#: set its own ``prepare_probe``); on a GPU a whole ``feature_batch_size``, where a small batch
#: would time mostly the fixed cost of a launch and overstate the seconds per value several times.
#: EfficientNet-Lite0 on 2 CPU cores, fashion photos: 9.4 / 8.5 / 8.4 ms per photo timed with 8 /
#: 16 / 32, against 8.3 through 1,000 photos.
PREPARE_PROBE = 16
_prepare_seconds: dict[tuple, float] = {}  # per process: settings and device -> seconds per value

#: Seconds :meth:`PretrainedEncoder.prepare` waits for another process computing a batch of the same
#: features (jobs started at once on one cache) before computing it too: a batch takes seconds.
CLAIM_WAIT_S = 120.0


def _evenly_spaced(values: Sequence[Any], n: int) -> list[Any]:
    """Up to ``n`` of ``values``, evenly spaced from the first to the last (none of none)."""
    if not len(values):
        return []
    return [values[i] for i in np.unique(np.linspace(0, len(values) - 1, n).astype(int))]


def shared_backbone(key: tuple, loader: Callable[[], nn.Module], device: torch.device | str = "cpu") -> nn.Module:
    """One read-only (eval, no-grad) network per process, ``key`` and ``device``, loaded on first
    use; frozen encoders share it instead of each holding a copy (one per device: trials on two
    GPUs in two threads never move one network under each other)."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:  # "cuda" and "cuda:0" are one device
        device = torch.device("cuda", torch.cuda.current_device())
    with _backbones_lock:
        model = _backbones.get((*key, str(device)))
        if model is None:
            # building the network draws its initial weights (then overwritten by the
            # pretrained ones) from torch's global generator: keep that generator as it was,
            # or the first fit of a process would train on other random draws than later fits
            with torch.random.fork_rng(devices=[]):
                model = loader().eval().to(device)
            for param in model.parameters():
                param.requires_grad_(False)
            _backbones[(*key, str(device))] = model
        return model


def clear_shared_backbones() -> None:
    with _backbones_lock:
        _backbones.clear()


#: Fewer values than this to compute features for (a service's request, say) are logged at DEBUG, not INFO.
QUIET_BELOW = 64

#: The Unicode normalisation of MiniLM's texts before its tokenizer, which folds accents and case but
#: not compatibility forms: full-width Latin ("ＮＩＫＥ　Ｓｎｅａｋｅｒ") was all [UNK] pieces (a
#: multilingual catalogue's titles: 0.527 accuracy in Latin, 0.317 full-width), ligatures ("ﬁ")
#: and superscripts too. The feature cache is keyed by the normalised text: its features are those of
#: the text read, so entries cached before stay valid.
TEXT_NORMALIZATION = "NFKC"

#: MiniLM's tokenizer is given a long text's first ``PREFIX_CHARACTERS_PER_PIECE * max_length``
#: characters (up to a space, a punctuation mark or a CJK character: the end of a word there) when they
#: hold more than ``max_length`` word pieces: it reads a text whole before it truncates (a text of
#: 42,000 characters: 0.1 s, for 128 pieces; a Chinese one of 48,000, or titles joined by '、' with no
#: space, 0.25-0.4 s), and a text is tokenized several times in a fit (300 such texts: a fit of 390 s,
#: 0.6 s a text to predict).
PREFIX_CHARACTERS_PER_PIECE = 16

#: The share of [UNK] word pieces in MiniLM's training texts above which its ``fit`` warns.
UNKNOWN_PIECES_WARNING_SHARE = 0.3

#: The share of MiniLM's training texts holding a word it cannot read (see
#: :meth:`MiniLMEncoder.unreadable_word`) above which its ``fit`` warns, where few of their pieces are
#: [UNK]: fashion titles whose key words (30 of them: "shirt", "shoes", "men", ...) were translated, the
#: brands and colours kept, held 0-26% [UNK] pieces and no warning came, while frozen MiniLM fitted on
#: 800 of them scored 0.62-0.72 test accuracy on subCategory in Chinese, Japanese, Korean, Arabic, Hebrew,
#: Hindi, Thai, Russian, Greek and as emoji (0.866 in English; hashed_ngram 0.94-0.98 in each). A word it
#: cannot read was in 51-100% of those titles (Korean, the least: 64%), in 0.1% of the English ones.
UNREADABLE_TEXTS_WARNING_SHARE = 0.3

#: A word MiniLM splits into at least this many word pieces per letter is one it reads a character at
#: a time ("рубашка": р ##у ##б ##а ##ш ##ка; "남성": six pieces of Hangul letters), not by the pieces of
#: words it learnt ("tshirt": ts ##hir ##t, "gömlek": go ##ml ##ek).
PIECES_PER_LETTER_UNREAD = 0.75

#: The default ``learning_rate_scale``: fashion subCategory (16 classes), the top 2 layers fine-tuned at
#: AutoMM's default learning_rate, test accuracy of seeds 0-2 at 1.0 -> 0.1: MiniLM (1,000 titles, 3
#: epochs) 0.968-0.976 -> 0.978-0.979, EfficientNet-Lite0 (400 photos, 2 epochs) 0.868-0.888 ->
#: 0.895-0.925; 0.3 as good (seeds 0-1), 0.03 a little worse on the photos (seed 0); a fit's seconds unchanged.
DEFAULT_LEARNING_RATE_SCALE = 0.1


def _kept_for_later(computed: int, stored: int) -> str:
    """What the log says of the features just computed: kept in the cache for later fits, or
    how many could not be (a read-only or full disk, warned about once)."""
    if stored >= computed:
        return "; later fits and predictions read them from the cache"
    if stored <= 0:
        return "; none of them could be kept in the feature cache"
    return f"; {computed - stored} of them could not be kept in the feature cache"


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low or (
            high is not None and value > high):
        bounds = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise InputError(f"hyperparameter {name} must be an integer {bounds}; got {value!r}")
    return int(value)


def _check_bool(name: str, value: Any) -> bool:
    """A switch: a bool or the integer 0 or 1 (a saved model's or a recipe's), not text, which
    ``bool()`` reads as true (a recipe's ``normalize: "no"`` left it on). (The core's
    ``true_or_false``, which a core of this series before it lacks.)"""
    if not (isinstance(value, (bool, np.bool_)) or (isinstance(value, (int, np.integer)) and value in (0, 1))):
        raise InputError(f"hyperparameter {name} must be true or false; got {value!r}")
    return bool(value)


def _check_scale(name: str, value: Any) -> float:
    """A learning-rate factor: a number in (0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
            0 < value <= 1):  # (NaN fails the comparison)
        raise InputError(f"hyperparameter {name} must be a number in (0, 1]; got {value!r}")
    return float(value)


def _leave_out_packaged(encoder: "PretrainedEncoder", state: dict, prefix: str, local_metadata) -> None:
    """A fine-tuned encoder's ``state_dict`` without the layers it never trains (its weights
    package holds them): a saved model, a trial's best epoch, keep only what training changed."""
    for key in encoder._packaged:
        state.pop(prefix + key, None)


def _fill_in_packaged(encoder: "PretrainedEncoder", state: dict, prefix: str, local_metadata, strict: bool,
                      missing_keys: list, unexpected_keys: list, error_msgs: list) -> None:
    """Before a fine-tuned encoder loads a ``state_dict``: the layers it never trains, when left
    out (:func:`_leave_out_packaged`), are those it was built with, from the weights package (a
    ``state_dict`` that holds them, saved by an earlier version, loads them as saved)."""
    for key in encoder._packaged:
        if prefix + key not in state:
            owner, _, name = key.rpartition(".")
            state[prefix + key] = getattr(encoder.get_submodule(owner), name).detach()


class PretrainedEncoder(Encoder):
    """Shared machinery of the frozen/fine-tuned pretrained encoders (see the module doc).

    Subclasses set ``name`` and ``feature_dim`` and implement ``_load``,
    ``_cache_params``, ``_sample`` (one value → network input), ``_collate_samples`` and
    ``_encode`` (network, collated batch → (B, feature_dim)).

    The linear form (``linear=True``, frozen only): the cached features times a weight
    ``output_dim`` wide, fitted by the search's linear model (:mod:`automm.linear`).
    Otherwise ``output_dim`` is the feature width and must be left at None (or equal it).

    ``learning_rate_scale`` (in (0, 1], :data:`DEFAULT_LEARNING_RATE_SCALE`): the fine-tuned layers
    train at the head's ``learning_rate`` times it (discriminative learning rates: pretrained layers move slower than
    freshly initialised ones); ignored when frozen, where nothing of the encoder trains."""

    name = ""
    weights_name = ""  # key of weights.WEIGHT_PACKAGES
    paths_are_files = False
    feature_dim = 0
    prepare_probe = PREPARE_PROBE  # values prepare_seconds times on the CPU
    #: prediction never reads it: left out of a saved model's configuration, so that an
    #: automm-pretrained that predates it loads the model (a fine-tuned encoder's state keeps it)
    training_only_hyperparameters = ("learning_rate_scale",)

    def __init__(self, trainable_layers: int = 0, max_trainable: int = 1, feature_batch_size: int = 64,
                 cache_dir: str | None = None, linear: bool = False, output_dim: int | None = None,
                 learning_rate_scale: float = DEFAULT_LEARNING_RATE_SCALE):
        super().__init__()
        self.trainable_layers = _check_int("trainable_layers", trainable_layers, 0, max_trainable)
        # the fine-tuned layers train at learning_rate * learning_rate_scale (automm.training's
        # configure_optimizer reads it from the backbone); frozen, nothing trains and it is ignored:
        # a search's fixed or narrowed value reaches its frozen trials too
        self.learning_rate_scale = _check_scale("learning_rate_scale", learning_rate_scale)
        self.feature_batch_size = _check_int("feature_batch_size", feature_batch_size, 1)
        self.linear = _check_bool("linear", linear)
        if self.linear:
            if self.trainable_layers:
                raise InputError(f"{self.name}: the linear form uses frozen features; got trainable_layers="
                                 f"{self.trainable_layers} with linear=True")
            self.output_dim = _check_int("output_dim", output_dim, 1)
            self.linear_layer = nn.Linear(self.feature_dim, self.output_dim, bias=False)
            nn.init.zeros_(self.linear_layer.weight)
            self.linear_width = self.feature_dim  # the search's linear model compares two inputs' features
        else:
            if output_dim is not None and int(output_dim) != self.feature_dim:
                raise InputError(f"{self.name}: output_dim is the feature width {self.feature_dim} unless "
                                 f"linear=True; got {output_dim}")
            self.output_dim = self.feature_dim
        self.frozen = self.trainable_layers == 0
        self.static_preprocess = self.frozen  # a feature vector looked up once per row
        self.cache_dir = cache_dir
        self._root: str | None = None  # the folder the last prepare used (kept by pickled copies)
        self._features: dict[bytes, torch.Tensor] = {}
        # the last prepare's texts and paths -> their keys, for preprocess (see prepare)
        self._keys: dict[str, bytes] = {}
        self._cache: FeatureCache | None = None
        self.last_prepare: dict = {}

    def _setup(self) -> None:
        """Called at the end of a subclass's ``__init__``: fine-tuning mode loads its own
        copy of the network (frozen mode shares one per process, loaded on first use)."""
        self.weights_path()  # fail early, naming the package to install, when it is missing
        if not self.frozen:
            self.backbone = self._load()
            self._freeze_bottom()
            self.backbone.learning_rate_scale = self.learning_rate_scale  # its trained layers; nothing else is scaled
            self._packaged = self._packaged_state_names()
            hook = getattr(self, "register_state_dict_post_hook", None) or self._register_state_dict_hook
            hook(_leave_out_packaged)
            self._register_load_state_dict_pre_hook(_fill_in_packaged, with_module=True)

    def _packaged_state_names(self) -> tuple[str, ...]:
        """The backbone's ``state_dict`` keys (relative to the encoder) that fine-tuning never
        changes: those outside the trained layers, as the weights package holds them."""
        trained = {id(tensor) for module in self._trainable_modules()  # (by identity: a group of
                   for tensor in [*module.parameters(), *module.buffers()]}  # layers may be a list of its own)
        return tuple(f"backbone.{name}" for name, tensor in self.backbone.state_dict(keep_vars=True).items()
                     if id(tensor) not in trained)

    # -- weights -------------------------------------------------------------------
    def weights_path(self):
        return weights_location(self.weights_name)

    def weights_sha256(self) -> str:
        path = self.weights_path()
        return file_sha256(self._weights_file(path))

    def _weights_file(self, location):
        return location

    def _load(self) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def _load_for_inference(self) -> nn.Module:
        """The network for frozen feature extraction (may be optimised for inference)."""
        return self._load()

    def _shared(self, device: torch.device | str = "cpu") -> nn.Module:
        return shared_backbone((self.name, str(self.weights_path())), self._load_for_inference, device)

    def _trainable_modules(self) -> list[nn.Module]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _freeze_bottom(self) -> None:
        for param in self.backbone.parameters():
            param.requires_grad_(False)
        for module in self._trainable_modules():
            for param in module.parameters():
                param.requires_grad_(True)

    def train(self, mode: bool = True):
        super().train(mode)
        if not self.frozen and mode:
            # frozen layers keep eval behaviour (no dropout noise, BatchNorm statistics fixed)
            self.backbone.eval()
            for module in self._trainable_modules():
                module.train(True)
            # so do the trained layers' BatchNorms (their scale and shift still train): in training
            # mode they would normalise by each batch's statistics while their running statistics
            # (momentum 0.01) stay near ImageNet's over a short fine-tuning, and the model predicts
            # with those (fashion subCategory, 400 photos, 2 epochs: 0.53 test accuracy, 0.91 with
            # the statistics it trained with)
            for module in self.backbone.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    # -- feature cache ---------------------------------------------------------------
    def _cache_params(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def feature_cache(self, cache_dir: Any = _LAST) -> FeatureCache:
        """The disk cache of this encoder's features (the encoder's own ``cache_dir``
        hyperparameter > ``cache_dir``, i.e. ``AutoMM(cache_dir=...)`` > ``$AUTOMM_CACHE_DIR`` >
        ``~/.cache/automm``). Without an argument (the per-sample path, :meth:`preprocess`): the
        one the last :meth:`prepare` used. ``None`` (``AutoMM(cache_dir=None)``, also after
        ``set_params(cache_dir=None)``) is the default place, not the folder an earlier call named."""
        if cache_dir is _LAST:
            if self._cache is not None:
                return self._cache  # no file system calls
            cache_dir = self._root  # a DataLoader worker's copy (its _cache dropped): the same folder
        root = resolve_cache_dir(self.cache_dir if self.cache_dir is not None else cache_dir)
        self._root = str(root)
        if self._cache is None or self._cache.root != root:
            sha = self.weights_sha256()
            params = dict(self._cache_params(), feature_version=FEATURE_VERSION, weights_sha256=sha)
            self._cache = FeatureCache(root, f"{self.name}-{sha[:16]}", params, paths=self.paths_are_files)
        return self._cache

    def prepare(self, values: Sequence[Any], *, cache_dir: str | None = None) -> None:
        """Frozen mode: make the features of every present value available in memory,
        from the cache or computed now in batches (and written to the cache). Only these
        values' features are kept in memory (those of an earlier call are let go), so a model
        that predicts batch after batch, as a service does, holds one batch's features. Each
        distinct text or path is keyed once (a file's bytes read as they are now), and
        :meth:`preprocess` of these values looks their features up by these keys, until the next
        ``prepare``: a predicted row's key was computed twice, and a bagged model's 5 fold models
        spent 38% of a prediction from cached features on keys."""
        if not self.frozen:
            return
        import time

        start = time.monotonic()
        cache = self.feature_cache(cache_dir)
        earlier, self._features = self._features, {}
        self._keys = keys_of = {}
        todo: dict[bytes, Any] = {}
        hits = 0
        for value in values:
            if value is MISSING:
                continue
            if isinstance(value, str) and value in keys_of:
                continue  # (a repeated text or path: looked up or queued already)
            key = cache.key(self._cache_value(value))
            if isinstance(value, str):
                keys_of[value] = key
            if key in self._features or key in todo:
                continue
            found = earlier.get(key)  # (kept from the last prepare: found, not computed, as the cache's are)
            if found is None:
                found = cache.get_by_key(key)
            hits += found is not None
            if found is not None:
                self._features[key] = found
            else:
                todo[key] = value
        del earlier
        computed = 0
        self.last_prepare = {"cached": hits, "computed": 0, "seconds": 0.0}
        if todo:
            # a few values (a service's request) are debug detail; a fit's or a batch's work is worth saying
            level = logging.INFO if len(todo) >= QUIET_BELOW else logging.DEBUG
            log.log(level, "%s: computing the features of %d %ss (%d found in the cache under %s)", self.name,
                     len(todo), self.modality, hits, cache.root)
            keys = list(todo)
            logged = time.monotonic()
            # written to the cache batch by batch: a run stopped at its deadline (or killed) keeps its progress
            unreadable: dict[int, InputError] = {}  # left out: the core makes them missing, naming them
            written, stored_before = 0, cache.writes
            found = [0]  # features another process computed meanwhile (several jobs started at once)
            values = [todo[k] for k in keys]
            claimed = self._claimed_batches(cache, keys, self._batches(values), found)
            with contextlib.closing(claimed), contextlib.closing(self.iter_features(values, unreadable, claimed)) as batches:
                for index_batch, vectors in batches:
                    for i, vector in zip(index_batch, vectors):
                        self._features[keys[i]] = self._store(cache, keys[i], values[i], vector)
                    written += len(index_batch)
                    failed = len(unreadable)
                    computed = written + failed + found[0]  # the inputs done with, read or not
                    self.last_prepare.update(computed=computed, seconds=time.monotonic() - start)
                    if time.monotonic() - logged > 30 or computed == len(keys):
                        log.log(level, "%s: %d of %d computed (%.0f s%s)%s", self.name, computed - failed, len(keys),
                                 time.monotonic() - start, f"; {failed} could not be read" if failed else "",
                                 _kept_for_later(written, cache.writes - stored_before) if computed == len(keys)
                                 else "")
                        logged = time.monotonic()
                    if computed < len(keys):
                        kept = ("kept in its feature cache for the next fit" if cache.writes > stored_before
                                else "not kept: its feature cache cannot be written")
                        check_deadline(f"{self.name} computed the features of {computed} of {len(keys)} "
                                       f"{self.modality}s ({kept})")
            if found[0]:
                self.last_prepare.update(cached=hits + found[0], computed=written + len(unreadable))
                log.log(level, "%s: %d of them computed by another process meanwhile, read from the cache",
                        self.name, found[0])
        self.last_prepare["seconds"] = time.monotonic() - start

    def _store(self, cache: FeatureCache, key: bytes, value: Any, vector: torch.Tensor) -> torch.Tensor:
        """``vector``, just computed from ``value``, written to the cache under ``key`` if ``value``
        still has that key: a file rewritten after it was keyed (a sync job replacing a photo during a
        long extraction) may have been read with its new bytes, whose features must not be kept under
        the old bytes' key, where another copy of the old photo would find them. They serve this
        call only (its next ``prepare`` keys the file anew), as do those of a file deleted since it was
        read (which failed the fit with a FileNotFoundError)."""
        try:
            same = cache.key(self._cache_value(value)) == key
        except OSError:  # gone (or unreadable) since it was read: what was read is not keyed
            same = False
        if not same:
            return vector.detach().to("cpu", torch.float32).reshape(-1).contiguous()
        return cache.put_by_key(key, vector)

    def _claimed_batches(self, cache: FeatureCache, keys: list[bytes], batches: list[list[int]],
                         found: list[int]) -> Iterator[list[int]]:
        """``batches`` (positions in ``keys``) to compute, less the features found in the cache: first
        those no other process is computing (:meth:`FeatureCache.claim`: jobs started at once on one
        cache share the work), then the others', once their process is done with them (at most
        :data:`CLAIM_WAIT_S` each, and not past the deadline), less what it cached. ``found[0]``
        counts the features found so."""
        from automm.deadlines import time_left

        def uncached(batch: list[int]) -> list[int]:
            left = []
            for i in batch:
                features = cache.get_by_key(keys[i])
                if features is None:
                    left.append(i)
                else:
                    self._features[keys[i]] = features
                    found[0] += 1
            return left

        deferred = []
        for batch in batches:
            with cache.claim([keys[i] for i in batch]) as mine:
                if not mine:
                    deferred.append(batch)
                    continue
                batch = uncached(batch)  # (a process done with it meanwhile)
                if batch:
                    yield batch
        for batch in deferred:
            left = time_left()
            wait = CLAIM_WAIT_S if left is None else max(0.0, min(CLAIM_WAIT_S, left))
            with cache.claim([keys[i] for i in batch], wait=wait):
                batch = uncached(batch)
                if batch:
                    yield batch

    def pending_share(self, values: Sequence[Any], *, cache_dir: str | None = None, sample: int = 64) -> float:
        """Frozen mode: the share of up to ``sample`` present values, evenly spaced, whose
        features are neither in memory nor in the cache (what :meth:`prepare` would compute);
        0.0 when fine-tuning (no one-off work)."""
        if not self.frozen:
            return 0.0
        present = [value for value in values if value is not MISSING]
        if not present:
            return 0.0
        probe = _evenly_spaced(present, sample)
        cache = self.feature_cache(cache_dir)
        keys = [cache.key(self._cache_value(value)) for value in probe]
        pending = sum(1 for key in keys if key not in self._features and cache.get_by_key(key) is None)
        return pending / len(keys)

    def external_parameters(self) -> tuple[torch.Tensor, ...]:
        """Frozen mode: the weights of the shared network (on the device features are computed
        on), which the module does not hold; none when fine-tuning (the module owns its copy)."""
        if not self.frozen:
            return ()
        return tuple(self._shared(_feature_device()).parameters())

    def prepare_seconds(self, values: Sequence[Any], probe: int | None = None) -> float:
        """Frozen mode: seconds per value of ``values`` that :meth:`prepare` takes to compute the
        features of values no cache holds (read, preprocess, the network). Timed once per
        process, settings and device, best of two passes over up to ``probe`` present values,
        evenly spaced, after one to warm up (loading the shared network), through
        :meth:`compute_features`: the feature cache is neither read nor written. Scaled by the
        share of present values (``MISSING`` costs nothing). 0.0 when fine-tuning: the network
        then runs in ``forward``, which the search times with the model."""
        if not self.frozen:
            return 0.0
        present = [value for value in values if value is not MISSING]
        if not present:
            return 0.0
        import time

        device = _feature_device()
        if probe is None:
            probe = self.feature_batch_size if device.type == "cuda" else self.prepare_probe
        key = (self.name, str(self.weights_path()), tuple(sorted(self._cache_params().items())),
               self.feature_batch_size, str(device))
        seconds = _prepare_seconds.get(key)
        if seconds is None:
            sample = self._probe_sample(present, probe)
            seconds = math.inf
            # one heap for the three passes, as for one long extraction: each compute_features
            # alone gives its memory back, and its first batch then page-faults its activations
            # in again (EfficientNet-Lite0, 2 CPU cores: 15.9 ms per photo timed so, 8.5 in a
            # long run)
            with heap_allocations():
                self.compute_features(sample)  # warm-up: the shared network loaded, the heap grown
                for _ in range(2):
                    start = time.perf_counter()
                    self.compute_features(sample)  # its .cpu() waits for a GPU's work
                    seconds = min(seconds, (time.perf_counter() - start) / len(sample))
            _prepare_seconds[key] = seconds
        return seconds * len(present) / len(values)

    def _probe_sample(self, present: Sequence[Any], probe: int) -> list[Any]:
        """The values :meth:`prepare_seconds` times: ``probe`` of them, evenly spaced."""
        return _evenly_spaced(present, probe)

    def _cache_value(self, value: Any) -> Any:
        """What identifies a value's content for the cache (texts: the string)."""
        return value

    def compute_features(self, values: Sequence[Any]) -> torch.Tensor:
        """Features (n, feature_dim) of present values through the pretrained network, in
        batches of ``feature_batch_size`` (no cache involved)."""
        out = torch.empty(len(values), self.feature_dim)
        with contextlib.closing(self.iter_features(values)) as batches:
            for index_batch, vectors in batches:
                out[torch.as_tensor(index_batch)] = vectors
        return out

    def iter_features(self, values: Sequence[Any], unreadable: dict | None = None,
                      batches: Iterable[list[int]] | None = None) -> Iterator[tuple[list[int], torch.Tensor]]:
        """:meth:`compute_features` batch by batch: (positions in ``values``, their features). With
        ``unreadable`` (a dict), a value that cannot be read (a file broken inside, though its check
        passed) is left out of its batch and its error kept there by position; else it raises.
        ``batches``: the positions of each batch (default: :meth:`_batches`), drawn as they come."""
        # frozen: the shared network on the device of the fit or prediction in progress
        network = self._shared(_feature_device()) if self.frozen else self.backbone
        device = next(network.parameters()).device
        was_training = network.training
        network.eval()
        try:
            # no page faults for each batch's large activations; the pixels are not needed again
            with heap_allocations(), suspend_image_cache():
                for index_batch in self._batches(values) if batches is None else batches:
                    samples, kept = [], []
                    for i in index_batch:
                        try:
                            samples.append(self._sample(values[i], None))
                            kept.append(i)
                        except InputError as exc:
                            if unreadable is None:
                                raise
                            unreadable[i] = exc
                    if not kept:
                        yield [], torch.empty(0, self.feature_dim)
                        continue
                    index_batch = kept
                    yield index_batch, self._encode_fitting(network, samples, device)
        finally:
            network.train(was_training)

    def _encode_fitting(self, network: nn.Module, samples: list[Any], device: torch.device) -> torch.Tensor:
        """The features of ``samples``; a batch the GPU has no memory for is computed in halves,
        and later batches are made as small (``feature_batch_size`` halved): training's retry
        with a smaller *training* batch would change nothing here."""
        from automm.pipeline import is_out_of_memory

        try:
            batch = _to_device(self._collate_samples(samples), device)
            with torch.no_grad():  # not inference_mode: the features later feed the heads' autograd graphs
                return self._encode(network, batch).float().cpu()
        except Exception as exc:  # noqa: BLE001 - out of GPU memory, else raised as it is
            if device.type != "cuda" or not is_out_of_memory(exc) or len(samples) <= 1:
                raise
        torch.cuda.empty_cache()
        half = len(samples) // 2
        self.feature_batch_size = max(1, min(self.feature_batch_size, half))
        log.warning("%s: out of GPU memory computing features; batches of %d from now on", self.name, half)
        return torch.cat([self._encode_fitting(network, samples[:half], device),
                          self._encode_fitting(network, samples[half:], device)])

    def _batches(self, values: Sequence[Any]) -> list[list[int]]:
        order = list(range(len(values)))
        size = self.feature_batch_size
        return [order[i:i + size] for i in range(0, len(order), size)]

    # -- Encoder interface -----------------------------------------------------------
    def preprocess(self, value: Any, augment: Callable[[Any], Any] | None = None) -> Any:
        if self.frozen:
            if value is MISSING:
                return torch.zeros(self.feature_dim)
            cache = self.feature_cache()
            key = self._keys.get(value) if isinstance(value, str) else None  # keyed by the last prepare
            if key is None:
                key = cache.key(self._cache_value(value))
            found = self._features.get(key)
            if found is None:  # prepare() was not called for this value: compute it alone
                found = cache.get_by_key(key)
                if found is None:
                    found = self._store(cache, key, value, self.compute_features([value])[0])
                self._features[key] = found
            return found
        return self._sample(value, augment)

    def collate(self, samples: list[Any]) -> Any:
        if self.frozen:
            return torch.stack(samples)
        return self._collate_samples(samples)

    def select_rows(self, batch: Any, rows: torch.Tensor) -> Any:
        """The rows' features (frozen) or network inputs: the model runs the rows that have the
        input only (an automm that predates ``select_rows`` never calls it); ``None``, every row
        run, for a subclass with its own ``collate``."""
        from automm.components.base import collate_replaced, take_rows

        if collate_replaced(self, PretrainedEncoder):
            return None

        return take_rows(batch, rows) if self.frozen else self._select_samples(batch, rows)

    def forward(self, batch: Any) -> torch.Tensor:
        if self.linear:
            return self.linear_layer(batch.float())
        if self.frozen:
            return batch.float()
        return self._encode(self.backbone, batch, trainable=True)

    def linear_design(self, batch: Any) -> torch.Tensor:
        """The rows' cached features (dense; frozen mode)."""
        if not self.frozen:
            raise RuntimeError(f"{self.name}: the linear form needs frozen features (trainable_layers=0)")
        return batch.float()

    def set_linear_weight(self, weight: torch.Tensor) -> None:
        if not self.linear:
            raise RuntimeError(f"{self.name}: set_linear_weight needs the linear form (linear=True)")
        with torch.no_grad():
            self.linear_layer.weight.copy_(weight.t())

    def get_state(self) -> dict:
        state = {"weights_package": f"{self._package()}=={package_version(self.weights_name)}",
                 "weights_sha256": self.weights_sha256(), "feature_version": FEATURE_VERSION}
        if not self.frozen:  # the saved weights hold the trained layers only: the rest is the package's
            state["saved_layers"] = "trained"
            # the rate its layers trained at (not in the saved configuration: training_only_hyperparameters)
            state["learning_rate_scale"] = self.learning_rate_scale
        return state

    def set_state(self, state: Mapping[str, Any]) -> None:
        expected = state.get("weights_sha256")
        needs_package = self.frozen or state.get("saved_layers") == "trained"
        if needs_package and expected and expected != self.weights_sha256():
            what = "features" if self.frozen else "untrained layers"
            raise WeightsMismatchError(
                f"{self.name}: the model was trained on the {what} of {state.get('weights_package')} "
                f"(weights sha256 {expected[:12]}...), but the installed weights differ (sha256 "
                f"{self.weights_sha256()[:12]}...); install {state.get('weights_package')}")
        if not self.frozen and "learning_rate_scale" in state:
            self.learning_rate_scale = _check_scale("learning_rate_scale", state["learning_rate_scale"])
            self.backbone.learning_rate_scale = self.learning_rate_scale

    def _package(self) -> str:
        from .weights import WEIGHT_PACKAGES

        return WEIGHT_PACKAGES[self.weights_name][0]

    # abstract pieces ------------------------------------------------------------------
    def _sample(self, value: Any, augment: Callable | None) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _collate_samples(self, samples: list[Any]) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _select_samples(self, batch: Any, rows: torch.Tensor) -> Any:
        """``rows`` of a batch of ``_collate_samples`` (default: one row per sample in every tensor)."""
        from automm.components.base import take_rows

        return take_rows(batch, rows)

    def _encode(self, network: nn.Module, batch: Any, trainable: bool = False) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def __getstate__(self):
        """A pickled copy (``joblib.dump`` or MLflow of a fitted model, a spawned worker) holds the
        encoder, not the last :meth:`prepare`'s values: their texts and paths (after ``fit``, the
        training rows') and features, which :meth:`preprocess` reads back from the feature cache."""
        state = self.__dict__.copy()
        state["_cache"] = None  # rebuilt lazily in the receiving process
        state["_features"], state["_keys"] = {}, {}
        return state


def _feature_device() -> torch.device:
    """Where frozen features are computed: the device of the fit, trial or prediction in progress
    (:func:`automm.devices.compute_device`: a fit with ``device="cpu"`` keeps them on the CPU);
    outside one, the GPU when CUDA is usable in this process, else the CPU."""
    device = compute_device()
    if device is not None:
        return device
    usable = torch.cuda.is_available() and not torch.cuda._is_in_bad_fork()  # a forked child cannot use CUDA
    return torch.device("cuda" if usable else "cpu")


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


# ----------------------------------------------------------------------------------------
# MiniLM
# ----------------------------------------------------------------------------------------

class MiniLMEncoder(PretrainedEncoder):
    """all-MiniLM-L6-v2 sentence embeddings (384-d): WordPiece tokens (lower-cased,
    truncated to ``max_length``), 6 BERT layers, mean pooling over real tokens, then L2
    normalisation when ``normalize``. ``trainable_layers`` (0-6) fine-tunes the top layers."""

    modality = "text"
    name = "minilm"
    weights_name = "minilm"
    feature_dim = 384
    prepare_probe = 32  # texts are cheap: 0.15 s for the three passes

    def __init__(self, trainable_layers: int = 0, max_length: int = 128, normalize: bool = True,
                 feature_batch_size: int = 128, cache_dir: str | None = None, linear: bool = False,
                 output_dim: int | None = None, learning_rate_scale: float = DEFAULT_LEARNING_RATE_SCALE):
        super().__init__(trainable_layers, 6, feature_batch_size, cache_dir, linear, output_dim, learning_rate_scale)
        self.max_length = _check_int("max_length", max_length, 2, self.max_length_limit)
        self.normalize = _check_bool("normalize", normalize)
        # its tokenizer folds no compatibility forms: full-width "ＮＩＫＥ" was [UNK] pieces, "NIKE"
        # not; a model saved before (no such key in its state) reads texts as it did (set_state)
        self.unicode_normalization: str | None = TEXT_NORMALIZATION
        self._tokenizer = None
        self._word_ends: dict[str, bool] = {}  # _ends_word's answers
        self._setup()

    def _weights_file(self, location):
        return location / "model.safetensors"

    #: What ``max_length`` counts, for the core's warning of cut texts (``truncated_share_``).
    token_unit = "word pieces of its vocabulary, [CLS] and [SEP] included"
    max_length_limit = 512  # its position embeddings: the longest text it reads

    def fit(self, values: Sequence[Any]) -> "MiniLMEncoder":
        """Count, on up to 500 present texts evenly spaced, the share longer than ``max_length`` word
        pieces (``truncated_share_``: read to it only, which the core says when over a tenth), and say
        (``fit_warnings_``, which the core warns with once per fit) when most of their word pieces are
        unknown to MiniLM's vocabulary: it knows no Chinese or Thai characters and no emoji, which all
        become ``[UNK]``, so such texts of one length get one embedding; else when over
        :data:`UNREADABLE_TEXTS_WARNING_SHARE` of them hold a word it cannot read
        (:meth:`unreadable_word`: titles in another script whose brands are in English)."""
        texts = self._sample_texts(values)
        encodings = self._encodings(texts)
        self.truncated_share_ = sum(bool(e.overflowing) for e in encodings) / len(encodings) if encodings else 0.0
        share = self._unknown_share(encodings)
        self.fit_warnings_ = []
        if share > UNKNOWN_PIECES_WARNING_SHARE:
            self.fit_warnings_.append(
                f"{share:.0%} of the word pieces of the training texts are unknown to minilm's vocabulary ([UNK]: "
                "Chinese and Thai characters and emoji are), so texts of one length get the same features; read "
                "them with hashed_ngram (encoders={'text': 'hashed_ngram'}), which reads every script")
            return self
        unread = Counter(word for word in map(self._unreadable_word, texts, encodings) if word is not None)
        if encodings and unread.total() > UNREADABLE_TEXTS_WARNING_SHARE * len(encodings):
            (word, how), _ = min(unread.items(), key=lambda item: (-item[1], item[0]))  # the most common
            self.fit_warnings_.append(
                f"{unread.total() / len(encodings):.0%} of the training texts hold words that minilm, a model of English "
                f"texts, cannot read (e.g. {word!r}, {how}): characters its vocabulary lacks are [UNK] (Chinese and "
                "Thai characters, emoji), words of another script or language are read a character at a time "
                "(Cyrillic, Greek, Arabic, Hangul), so their meaning is lost to it; read them with hashed_ngram "
                "(encoders={'text': 'hashed_ngram'}), which reads every script")
        return self

    def unreadable_word(self, value: Any) -> tuple[str, str] | None:
        """The first word of ``value`` that MiniLM cannot read, and how it reads it: one holding a
        character its vocabulary lacks (``"[UNK]"``: Chinese and Thai characters, emoji), or one of
        letters outside ASCII that it splits into :data:`PIECES_PER_LETTER_UNREAD` word pieces a
        letter or more (``"a character at a time"``: a script or language it was not trained on); None
        when it reads every word by the pieces of words it learnt."""
        text = self._text(value)
        return self._unreadable_word(text, self._encodings([text])[0])

    def _unreadable_word(self, text: str, encoding: Any) -> tuple[str, str] | None:
        unknown = self.tokenizer.token_to_id("[UNK]")
        pieces: dict[int, list[tuple[int, str]]] = {}
        for word, piece, token in zip(encoding.word_ids, encoding.ids, encoding.tokens):
            if word is not None:
                pieces.setdefault(word, []).append((piece, token))
        for word, its in pieces.items():
            start, end = encoding.word_to_chars(word)
            written = text[start:end]
            if any(piece == unknown for piece, _ in its):
                return written, "[UNK]"
            letters = sum(unicodedata.category(char)[0] == "L" for char in written)
            if (len(its) >= 2 and not written.isascii() and letters
                    and len(its) >= PIECES_PER_LETTER_UNREAD * letters):
                return written, "a character at a time"
        return None

    def unknown_share(self, values: Sequence[Any], sample: int = 500) -> float:
        """The share of [UNK] among the word pieces (less [CLS] and [SEP]) of up to ``sample``
        present values, evenly spaced."""
        return self._unknown_share(self._sample_encodings(values, sample))

    def _sample_texts(self, values: Sequence[Any], sample: int = 500) -> list[str]:
        """The texts the tokenizer reads of up to ``sample`` present values, evenly spaced."""
        return [self._text(v) for v in _evenly_spaced([v for v in values if v is not MISSING], sample)]

    def _sample_encodings(self, values: Sequence[Any], sample: int = 500) -> list:
        """The encodings (cut at ``max_length``) of up to ``sample`` present values, evenly spaced."""
        return self._encodings(self._sample_texts(values, sample))

    def _unknown_share(self, encodings: Sequence[Any]) -> float:
        unknown = self.tokenizer.token_to_id("[UNK]")
        pieces = [e.ids[1:-1] for e in encodings]
        total = sum(len(ids) for ids in pieces)
        return sum(i == unknown for ids in pieces for i in ids) / total if total else 0.0

    def _load(self) -> nn.Module:
        from .bert import load_bert

        return load_bert(self.weights_path())

    def _trainable_modules(self) -> list[nn.Module]:
        layers = list(self.backbone.encoder.layer)
        return layers[len(layers) - self.trainable_layers:]

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from .bert import load_tokenizer

            self._tokenizer = load_tokenizer(self.weights_path(), self.max_length)
        return self._tokenizer

    def _cache_params(self) -> dict:
        # "unpadded": features computed in batches of one token count (see _batches); those of
        # earlier versions, padded to their batch's longest text, differ in the last bits
        return {"max_length": self.max_length, "normalize": self.normalize, "pooling": "mean", "batches": "unpadded"}

    def _text(self, value: Any) -> str:
        """The text the tokenizer reads (and the feature cache is keyed by): NFKC-normalised (see
        :data:`TEXT_NORMALIZATION`), a lone surrogate replaced."""
        text = "" if value is MISSING else str(value)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (a text cut inside an emoji): the tokenizer refuses it
            text = text.encode("utf-8", "replace").decode("utf-8")
        if self.unicode_normalization:
            text = unicodedata.normalize(self.unicode_normalization, text)
        return text

    def get_state(self) -> dict:
        return {**super().get_state(), "unicode_normalization": self.unicode_normalization}

    def set_state(self, state: Mapping[str, Any]) -> None:
        super().set_state(state)
        # absent from models saved before texts were normalised: read as they were then
        self.unicode_normalization = state.get("unicode_normalization")

    def _cache_value(self, value: Any) -> Any:
        return self._text(value)

    def tokenize(self, value: Any, augment: Callable | None = None) -> list[int]:
        text = self._text(value)
        if augment is not None:  # token augmentations act on the words; the tokeniser runs after
            words = augment(text.split())
            text = " ".join(str(w) for w in words)
        return self._encodings([text])[0].ids

    def _encodings(self, texts: Sequence[str]) -> list:
        """The tokenizer's encodings of ``texts``, each truncated to ``max_length`` pieces as the
        tokenizer truncates the whole text: a long text's start up to the end of a word (see
        :meth:`_word_end`), when it already holds more (see :data:`PREFIX_CHARACTERS_PER_PIECE`; its
        normaliser and pre-tokenizer read each character and word by itself, so the words before the
        end are read alike), else the whole."""
        limit = PREFIX_CHARACTERS_PER_PIECE * self.max_length
        starts = [text[:self._word_end(text, limit)] if len(text) > limit else "" for text in texts]
        encodings = self.tokenizer.encode_batch(starts)
        whole = [i for i, (start, encoding) in enumerate(zip(starts, encodings)) if not encoding.overflowing]
        for i, encoding in zip(whole, self.tokenizer.encode_batch([texts[i] for i in whole]) if whole else []):
            encodings[i] = encoding
        return encodings

    def _word_end(self, text: str, limit: int) -> int:
        """The length of the longest start of ``text[:limit]`` that ends where the tokenizer ends a
        word whatever follows: after a space, a punctuation mark or a character it reads as a word of
        its own (CJK: a Chinese text, or words joined by '、', has no space); 0 where none does."""
        for end in range(min(limit, len(text)), 0, -1):
            if self._ends_word(text[end - 1]):
                return end
        return 0

    def _ends_word(self, char: str) -> bool:
        """Whether the tokenizer ends a word after ``char`` whatever follows, as its own normaliser and
        pre-tokenizer read it (asked once per character: their Unicode tables, not Python's, decide)."""
        known = self._word_ends.get(char)
        if known is None:
            tokenizer = self.tokenizer
            probe = f"a{char}a"
            if tokenizer.normalizer is not None:
                probe = tokenizer.normalizer.normalize_str(probe)
            words = [word for word, _ in tokenizer.pre_tokenizer.pre_tokenize_str(probe)] \
                if tokenizer.pre_tokenizer is not None else probe.split(" ")
            known = self._word_ends[char] = len(words) > 1 and words[-1] == "a"
        return known

    def _sample(self, value: Any, augment: Callable | None) -> torch.Tensor:
        return torch.tensor(self.tokenize(value, augment), dtype=torch.long)

    def _collate_samples(self, samples: list[torch.Tensor]) -> dict:
        longest = max(len(s) for s in samples)
        ids = torch.zeros(len(samples), longest, dtype=torch.long)
        attend = torch.zeros(len(samples), longest, dtype=torch.bool)
        for row, sample in enumerate(samples):
            ids[row, :len(sample)] = sample
            attend[row, :len(sample)] = True
        return {"ids": ids, "attend": attend}

    def _select_samples(self, batch: dict, rows: torch.Tensor) -> dict:
        attend = batch["attend"].index_select(0, rows)
        longest = int(attend.sum(1).max()) if len(rows) else 0
        return {"ids": batch["ids"].index_select(0, rows)[:, :longest], "attend": attend[:, :longest]}

    def _probe_sample(self, present: Sequence[Any], probe: int) -> list[Any]:
        """Texts of about the mean length: a long extraction batches texts of like length
        (:meth:`_batches`), so it pads little; texts spread over every length would pad each
        to the longest and time 1.6-2x the real cost (fashion titles: 2.3 ms per title timed
        so, 1.5 timed at the mean length, 1.4 through 3,000)."""
        lengths = np.array([len(self._text(value)) for value in present], dtype=np.float64)
        order = np.argsort(np.abs(lengths - lengths.mean()), kind="stable")[:probe]
        return [present[i] for i in np.sort(order)]

    def _batches(self, values: Sequence[Any]) -> list[list[int]]:
        """Batches of texts of one token count each: nothing is padded, so a text's features
        are the same bit for bit whatever texts it is computed with (padding it to a longer
        text's length moved them by about 1e-7, enough for fits with differently filled caches
        to differ by 4e-3 in their probabilities), and no work goes to padding."""
        lengths = [len(e.ids) for e in self._encodings([self._text(v) for v in values])]
        groups: dict[int, list[int]] = {}
        for i in sorted(range(len(values)), key=lambda i: lengths[i]):
            groups.setdefault(lengths[i], []).append(i)
        size = self.feature_batch_size
        return [group[i:i + size] for group in groups.values() for i in range(0, len(group), size)]

    def _encode(self, network: nn.Module, batch: dict, trainable: bool = False) -> torch.Tensor:
        from .bert import masked_mean

        first = network.num_layers - self.trainable_layers if trainable else None
        hidden = network(batch["ids"], batch["attend"], first)
        pooled = masked_mean(hidden, batch["attend"])
        return F.normalize(pooled, dim=1) if self.normalize else pooled


def trainable_layer_choices() -> list[int]:
    """``trainable_layers`` choices of the search spaces: frozen or the top 1-2 layers when the
    search trains on a CUDA GPU (:func:`automm.devices.compute_device`; outside a search, when
    one is available); only frozen on the CPU, where one fine-tuning epoch (a full forward of
    every sample through the network) costs minutes and a time-limited search would spend its
    budget there, also on a machine with a GPU that the fit was told not to use. Widen it with
    ``search_space={"encoders": {"image": {"efficientnet_lite0": {"trainable_layers": [0, 1, 2]}}}}``."""
    device = compute_device()
    on_gpu = device.type == "cuda" if device is not None else torch.cuda.is_available()
    return [0, 1, 2] if on_gpu else [0]


#: The range of ``learning_rate_scale`` a search samples (log scale) when it fine-tunes.
LEARNING_RATE_SCALE_RANGE = (0.03, 1.0)


def fine_tuning_space(trial: Any, prefix: str) -> dict:
    """``trainable_layers`` (:func:`trainable_layer_choices`) and, only when it fine-tunes,
    ``learning_rate_scale`` (log scale over :data:`LEARNING_RATE_SCALE_RANGE`): a frozen trial
    has no layer it could scale, and a parameter that changes nothing is noise for the sampler."""
    layers = trial.suggest_categorical(f"{prefix}trainable_layers", trainable_layer_choices())
    if not layers:
        return {"trainable_layers": layers}
    low, high = LEARNING_RATE_SCALE_RANGE
    return {"trainable_layers": layers,
            "learning_rate_scale": trial.suggest_float(f"{prefix}learning_rate_scale", low, high, log=True)}


def minilm_search_space(trial: Any, prefix: str) -> dict:
    """Frozen (cached features) or fine-tuning the top layers at a scaled learning rate (see
    :func:`fine_tuning_space`). Preprocessing is not searched: every change of it would mean
    computing all features again."""
    return fine_tuning_space(trial, prefix)


MINILM_DEFAULTS = {"trainable_layers": 0, "max_length": 128, "normalize": True, "feature_batch_size": 128,
                   "cache_dir": None, "linear": False, "output_dim": None,
                   "learning_rate_scale": DEFAULT_LEARNING_RATE_SCALE}


# ----------------------------------------------------------------------------------------
# EfficientNet-Lite0
# ----------------------------------------------------------------------------------------

_IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
_IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
NORMALIZATIONS = ("imagenet", "lite")


class EfficientNetLite0Encoder(PretrainedEncoder):
    """EfficientNet-Lite0 ImageNet features (1280-d, global average pool). Images of any
    kind :func:`automm.components.image.load_image` reads are resized to ``image_size``
    squared and normalised. ``trainable_layers`` (0-17) fine-tunes the head and then
    MBConv blocks from the top."""

    modality = "image"
    name = "efficientnet_lite0"
    weights_name = "efficientnet_lite0"
    feature_dim = 1280
    paths_are_files = True

    def __init__(self, trainable_layers: int = 0, image_size: int = 224, normalization: str = "imagenet",
                 feature_batch_size: int = 32, cache_dir: str | None = None, linear: bool = False,
                 output_dim: int | None = None, learning_rate_scale: float = DEFAULT_LEARNING_RATE_SCALE):
        from .efficientnet import LITE0_BLOCKS

        super().__init__(trainable_layers, LITE0_BLOCKS + 1, feature_batch_size, cache_dir, linear, output_dim,
                         learning_rate_scale)
        self.image_size = _check_int("image_size", image_size, 32, 1024)
        if normalization not in NORMALIZATIONS:
            raise InputError(f"hyperparameter normalization must be one of {NORMALIZATIONS}; got {normalization!r}")
        self.normalization = normalization
        self._setup()
        if not self.frozen:
            self.backbone.to(memory_format=torch.channels_last)

    def _load(self) -> nn.Module:
        from .efficientnet import load_efficientnet_lite0

        return load_efficientnet_lite0(self.weights_path())

    def _load_for_inference(self) -> nn.Module:
        from .efficientnet import fold_batchnorm

        # BatchNorm folded into the convolutions and channels-last memory: ~1.5x faster on CPU
        return fold_batchnorm(self._load()).to(memory_format=torch.channels_last)

    def _trainable_modules(self) -> list[nn.Module]:
        return self.backbone.units_from_top(self.trainable_layers)

    def _cache_params(self) -> dict:
        return {"image_size": self.image_size, "normalization": self.normalization, "resize": "bilinear-squash"}

    def _sample(self, value: Any, augment: Callable | None) -> torch.Tensor:
        from automm.components.image import image_tensor

        if value is MISSING:
            return torch.zeros(3, self.image_size, self.image_size)
        x = image_tensor(value, self.image_size, augment)
        if self.normalization == "imagenet":
            return (x - _IMAGENET_MEAN) / _IMAGENET_STD
        return (x * 255.0 - 127.0) / 128.0

    def _collate_samples(self, samples: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(samples)

    def _encode(self, network: nn.Module, batch: torch.Tensor, trainable: bool = False) -> torch.Tensor:
        batch = batch.contiguous(memory_format=torch.channels_last)
        return network(batch, self.trainable_layers if trainable else -1)


def efficientnet_lite0_search_space(trial: Any, prefix: str) -> dict:
    """Frozen (cached features) or fine-tuning the head / the head and the last block at a scaled
    learning rate (see :func:`fine_tuning_space`); the image size is not searched (features again)."""
    return fine_tuning_space(trial, prefix)


EFFICIENTNET_LITE0_DEFAULTS = {"trainable_layers": 0, "image_size": 224, "normalization": "imagenet",
                               "feature_batch_size": 32, "cache_dir": None, "linear": False, "output_dim": None,
                               "learning_rate_scale": DEFAULT_LEARNING_RATE_SCALE}
