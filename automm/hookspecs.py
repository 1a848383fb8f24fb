"""Hook specifications: the contract between the automm core and its plugins.

A plugin is any object or module with functions marked ``@automm.hookimpl`` and named as below.
Built-in components are registered through these same hooks (see :mod:`automm.builtin`);
third-party packages are found through the ``automm`` entry-point group.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import pluggy

PROJECT_NAME = "automm"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["hookspec", "hookimpl", "PROJECT_NAME"]


@hookspec
def automm_register_encoders(register: Callable[..., None]) -> None:
    """Register encoders by calling ``register`` once per encoder.

    ``register(name, factory, *, modality, output_dim=None, defaults=None,
    search_space=None, description="", tags=())``:

    - ``name``: unique lower-case identifier (letters, digits, ``_``, ``-``).
    - ``factory(**hyperparameters)`` returns an :class:`automm.Encoder`.
    - ``modality``: the input it encodes (``"image"``, ``"text"``, ``"tabular"``,
      or a new modality such as ``"audio"``). A ``tabular`` encoder's factory also receives
      ``column_roles``: each table column's role, ``"numeric"``, ``"categorical"`` or
      ``"datetime"`` (see :func:`automm.roles.as_datetime` for reading the latter).
    - ``output_dim``: the embedding width, an int or ``f(hyperparameters) -> int``;
      it must equal the built encoder's ``output_dim``.
    - ``defaults``: default hyperparameters (JSON-serialisable values).
    - ``search_space(trial, prefix) -> dict``: suggests hyperparameters on an Optuna
      trial, every parameter name starting with ``prefix``; returns keyword arguments
      for ``factory`` (without the prefix).
    - ``tags``: labels such as ``"manual"`` (see below); ``"pretrained"`` (pretrained weights
      whose defaults run frozen on cached features): the search tries the default configuration
      with such encoders right after the default itself, since it is cheap and usually strong;
      ``"linear"`` (the encoder has a linear form: it accepts ``linear=True`` and
      ``output_dim``, and implements ``linear_design`` and ``set_linear_weight``; the
      search's linear model is built from such encoders, see :mod:`automm.linear`).

    The tag ``"manual"`` (encoders, fusions, augmentations) keeps a component out of what the
    search tries by default: it is used only where the user names it (``encoders=``,
    ``fusion=``, ``augmentations=``, ``search_space=``), e.g. one that suits only some data.
    """


@hookspec
def automm_register_fusions(register: Callable[..., None]) -> None:
    """Register fusions by calling ``register`` once per fusion.

    ``register(name, factory, *, defaults=None, search_space=None, description="", tags=())``
    where ``factory(input_dims, n_outputs, **hyperparameters)`` returns an
    :class:`automm.Fusion` combining one embedding per input (its contract: inputs, masks,
    ``output_dim``, ``produces_outputs``, in that class's documentation). ``search_space`` and
    ``defaults`` are as for encoders; ``tags=("manual",)`` keeps it out of the search unless
    named (as the built-in ``sum`` and ``neighbors``, see :func:`automm_register_encoders`);
    ``tags=("pairs",)`` keeps it out of the search of data that lack two inputs of one
    modality (as the built-in ``compare``, which compares such inputs).
    """


@hookspec
def automm_register_augmentations(register: Callable[..., None]) -> None:
    """Register augmentations by calling ``register`` once per augmentation.

    ``register(name, factory, *, modality, defaults=None, search_space=None,
    description="", tags=())``: ``modality`` is the modality whose samples it changes
    (``"image"``, ``"text"``, ...) or ``"batch"`` for augmentations applied to a
    whole training batch (modality dropout, mixup). ``factory(**hyperparameters)``
    returns an :class:`automm.Augmentation` (an :class:`automm.BatchAugmentation` for
    ``"batch"``). ``search_space`` and ``defaults`` are as for encoders. The search switches
    every installed augmentation of the data's modalities on or off, unless tagged
    ``"manual"`` (used only where named, see :func:`automm_register_encoders`).
    """


@hookspec
def automm_register_datasets(register: Callable[..., None]) -> None:
    """Register small example datasets by calling ``register`` once per dataset.

    ``register(name, loader, *, columns=None, description="")``: ``loader()`` returns a
    pandas DataFrame whose ``split`` column holds ``"train"`` or ``"test"`` and whose other
    columns are ready to fit on (file paths absolute, or in-memory values); ``columns``
    lists its column names, so that recipes are checked without loading the data. Recipes
    name a dataset with ``data.sample``; :func:`automm.load_dataset` loads one. A loader
    must not touch the network.
    """


@hookspec(firstresult=True)
def automm_infer_column_role(name: str, values: Sequence[Any]) -> str | None:
    """Return the role of a data column (``"image"``, ``"text"``, ``"numeric"``,
    ``"categorical"``, ``"datetime"``, or a plugin modality such as ``"audio"``), or ``None`` to let
    the next plugin decide. ``values`` holds the column's non-missing values (a sample
    of them for large columns). The first non-``None`` answer wins; installed plugins are asked
    in reverse order of their packages' names (``automm-zeta``'s before ``automm-alpha``'s), the
    built-in rules last, and where two plugins claim one column as different roles ``fit`` warns,
    naming both. Return ``None`` for numbers, texts, dates and other data the built-in rules read
    (:func:`automm.testing.check_role_inference` checks it): every fit asks about every column.
    A lone list of dicts given to ``fit`` is read as records (a table, one dict per
    sample) unless this hook claims its dicts for a modality other than text or categorical
    (an audio clip ``{"array": ..., "sample_rate": ...}``); it is then asked with ``name="x0"``.
    """


@hookspec
def automm_check_column(role: str, name: str, values: Sequence[Any]) -> list[tuple[int, str]] | None:
    """For a column whose role is a modality this plugin provides (``"audio"``): the rows whose
    values cannot be read, as ``(position, why)`` pairs (``[]``: every value readable), checked
    before any work; ``None`` for a role that is not this plugin's.
    ``values`` is the whole column, missing values as ``None`` (skip them). Check every value as
    training will read it, and no more. As for images, the core then makes a few unreadable values (at most 5% of the present ones) missing with a
    warning naming them, and refuses more with an error naming the first rows, before training
    or predicting.
    """