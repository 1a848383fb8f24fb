"""Plugin discovery and the component registries (``list_*`` / ``create_*``).

The built-in plugins (an explicit list in :mod:`automm.builtin`) are always registered;
third-party plugins come from the ``automm`` entry-point group unless the environment
variable ``AUTOMM_DISABLE_PLUGIN_AUTOLOAD`` is set to a true value.
"""

from __future__ import annotations

import fnmatch
import importlib
import os
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

import pandas as pd
import pluggy

from . import hookspecs
from .components.base import Augmentation, BatchAugmentation, Encoder, Fusion
from .exceptions import AutoMMWarning, UnknownComponentError, PluginError, user_stacklevel
from .suggestions import close_match

__all__ = [
    "ComponentSpec",
    "Registry",
    "get_registry",
    "reset_registry",
    "list_encoders",
    "list_fusions",
    "list_augmentations",
    "list_datasets",
    "load_dataset",
    "create_encoder",
    "create_fusion",
    "create_augmentation",
    "get_plugin_manager",
    "DISABLE_AUTOLOAD_ENV",
    "PluginLoadWarning",
    "ENTRY_POINT_GROUP",
    "split_component_choice",
    "skipped_plugins",
    "distribution_name",
    "autoload_disabled",
    "SearchSpaceError",
]

DISABLE_AUTOLOAD_ENV = "AUTOMM_DISABLE_PLUGIN_AUTOLOAD"
ENTRY_POINT_GROUP = "automm"
KINDS = ("encoder", "fusion", "augmentation", "dataset")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_\-]*$")
#: A configuration's stack of encoders on one input (``automm.components.stack``), never registered.
RESERVED_ENCODER_NAME = "stack"
#: The keyword arguments of the ``register`` callback a registration hook receives.
REGISTER_KEYWORDS = ("modality", "output_dim", "defaults", "search_space", "description", "columns", "tags")


@dataclass(frozen=True)
class ComponentSpec:
    """What a plugin registered for one component."""

    kind: str
    name: str
    factory: Callable[..., Any]
    provider: str
    package: str | None = None
    modality: str | None = None
    output_dim: int | Callable[[dict], int] | None = None
    defaults: dict = field(default_factory=dict)
    search_space: Callable[..., dict] | None = None
    description: str = ""
    columns: tuple[str, ...] | None = None  # datasets only: the loader's column names
    tags: tuple[str, ...] = ()  # e.g. ("pretrained",): the search tries such encoders early

    @property
    def label(self) -> str:
        """How messages name it: ``fusion 'film' (plugin 'automm_film')``."""
        return f"{self.kind} {self.name!r} (plugin {self.provider!r})"

    def hyperparameters(self, **overrides: Any) -> dict:
        """Defaults updated with ``overrides``, as the factory runs them when it says so (its optional
        ``hyperparameters_as_run``: color_jitter's ``strength`` sets brightness, contrast and saturation)."""
        params = dict(self.defaults)
        params.update(overrides)
        as_run = getattr(self.factory, "hyperparameters_as_run", None)
        return as_run(params) if callable(as_run) else params

    def expected_output_dim(self, **overrides: Any) -> int | None:
        if self.output_dim is None:
            return None
        if callable(self.output_dim):
            return int(self.output_dim(self.hyperparameters(**overrides)))
        return int(self.output_dim)

    def accepted_hyperparameters(self) -> list[str] | None:
        """The keyword arguments the factory takes, sorted (None: any, for a factory taking
        ``**kwargs`` or one without a signature); a fusion's ``(input_dims, n_outputs)`` and the
        table encoder's ``column_roles`` (automm gives them) are not among them."""
        import inspect

        try:
            parameters = list(inspect.signature(self.factory).parameters.values())
        except (TypeError, ValueError):  # a builtin or C factory: nothing to check against
            return None
        if any(p.kind is p.VAR_KEYWORD for p in parameters):
            return None
        if self.kind == "fusion":
            parameters = parameters[2:]
        names = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if self.kind == "encoder" and self.modality == "tabular":
            names.discard("column_roles")
        return sorted(names | set(self.defaults))

    def unknown_hyperparameters(self, params: Mapping[str, Any]) -> list:
        """The names in ``params`` that the factory does not take (none when it takes ``**kwargs``)."""
        taken = self.accepted_hyperparameters()
        return [] if taken is None else [key for key in params if key not in taken]

    def check_hyperparameters(self, params: Mapping[str, Any], argument: str, also: Sequence[str] = ()) -> None:
        """Raise :class:`~automm.exceptions.InputError` naming ``argument`` when ``params`` holds a
        name the factory does not take (:meth:`accepted_hyperparameters`) nor is among ``also``
        (keys the caller reads itself, such as a search space's ``enabled``)."""
        from .exceptions import InputError

        unknown = [key for key in self.unknown_hyperparameters(params) if key not in also]
        if unknown:
            taken = [*also, *(self.accepted_hyperparameters() or ())]
            close = close_match(str(unknown[0]), taken)
            hint = f" (did you mean {close!r}?)" if close else ""
            raise InputError(f"{argument}: {self.kind} {self.name!r} has no hyperparameter {unknown[0]!r}{hint}; "
                             f"it takes {', '.join(taken) or 'none'}")

    def create(self, *args: Any, **overrides: Any) -> Any:
        return self.factory(*args, **self.hyperparameters(**overrides))

    def suggest(self, trial: Any, prefix: str | None = None) -> dict:
        """Hyperparameters for this component suggested on an Optuna ``trial``; a parameter name
        without ``prefix`` (before Optuna sees it) or a returned keyword the factory does not
        take is a :class:`SearchSpaceError`."""
        if self.search_space is None:
            return {}
        from .storage import StorageError

        prefix = prefix if prefix is not None else f"{self.name}."
        prefixed = _PrefixedTrial(trial, prefix, self)
        try:
            params = dict(self.search_space(prefixed, prefix))
        except (SearchSpaceError, StorageError):  # (a study's storage that cannot be written: not the plugin's)
            raise
        except Exception as exc:
            import optuna

            if isinstance(exc, optuna.TrialPruned):
                raise
            where = (f" in Optuna's suggest of {prefixed.suggesting!r} (the range it was given, or the sampler)"
                     if prefixed.suggesting is not None else "")
            raise PluginError(f"the search space of {self.label} raised {type(exc).__name__}{where}: {exc}") from exc
        unknown = self.unknown_hyperparameters(params)
        if unknown:
            taken = self.accepted_hyperparameters()
            raise SearchSpaceError(f"the search space of {self.label} returned {unknown[0]!r}, which its factory "
                                   f"does not take (it takes {', '.join(taken) or 'nothing'}); return only keyword "
                                   "arguments of the factory")
        return params


class SearchSpaceError(PluginError):
    """A component's search-space function broke its contract (see :meth:`ComponentSpec.suggest`)."""


class _PrefixedTrial:
    """Passes a search space's calls on to the trial, refusing a ``suggest_*`` whose parameter
    name does not start with the component's prefix: two components' parameters would collide."""

    def __init__(self, trial: Any, prefix: str, spec: ComponentSpec):
        self._trial, self._prefix, self._spec = trial, prefix, spec
        self.suggesting: str | None = None  # the parameter whose suggest is running (or failed)

    def __getattr__(self, attribute: str) -> Any:
        value = getattr(self._trial, attribute)
        if not attribute.startswith("suggest_") or not callable(value):
            return value

        def suggest(*args: Any, **kwargs: Any) -> Any:
            name = args[0] if args else kwargs.get("name")
            if not isinstance(name, str) or not name.startswith(self._prefix):
                raise SearchSpaceError(
                    f"the search space of {self._spec.label} suggested {name!r}, which does not start with its "
                    f"prefix {self._prefix!r}; name every parameter f\"{{prefix}}...\" with the prefix it is given")
            self.suggesting = name
            suggested = value(*args, **kwargs)
            self.suggesting = None
            return suggested
        return suggest


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


class Registry:
    """All components known to one plugin manager, by kind and name."""

    def __init__(self, plugin_manager: pluggy.PluginManager):
        self.plugin_manager = plugin_manager
        self._specs: dict[str, dict[str, ComponentSpec]] = {kind: {} for kind in KINDS}
        self._collect()

    # -- collection -----------------------------------------------------------------
    def package_of(self, plugin_name: str) -> str | None:
        """``"distribution version"`` of an entry-point plugin, None for an in-process one."""
        return _distributions(self.plugin_manager).get(plugin_name)

    def _collect(self) -> None:
        """Every plugin's components. An entry-point plugin whose registration fails (its hook
        raises, a duplicate or invalid name, an unknown ``register`` keyword, ``tags=`` or
        ``columns=`` given as one string) is unregistered and skipped with a
        :class:`PluginLoadWarning`, and the collection starts again without it; an in-process
        plugin's failure (a built-in, or one given to :func:`reset_registry`) raises."""
        while True:
            self._specs = {kind: {} for kind in KINDS}
            failure = self._collect_once()
            if failure is None:
                return
            plugin_name, exc, hook = failure
            package = self.package_of(plugin_name)
            self.plugin_manager.unregister(name=plugin_name)
            why = str(exc) if isinstance(exc, PluginError) else f"{hook} raised {type(exc).__name__}: {exc}"
            _skip_plugin(self.plugin_manager, plugin_name, package, f"its components could not be registered: {why}")

    def _collect_once(self) -> tuple[str, Exception, str] | None:
        """The first failure of an entry-point plugin's registration hook, (plugin, exception,
        hook name), or None when every component was collected."""
        hooks = {
            "encoder": self.plugin_manager.hook.automm_register_encoders,
            "fusion": self.plugin_manager.hook.automm_register_fusions,
            "augmentation": self.plugin_manager.hook.automm_register_augmentations,
            "dataset": self.plugin_manager.hook.automm_register_datasets,
        }
        for kind, caller in hooks.items():
            # Call each implementation separately so that every registration knows its provider.
            for impl in caller.get_hookimpls():
                package = self.package_of(impl.plugin_name)
                register = self._make_register(kind, impl.plugin_name, package)
                try:
                    impl.function(register=register)
                except Exception as exc:  # noqa: BLE001 - third-party code
                    if package is not None:
                        return impl.plugin_name, exc, caller.name
                    # an in-process plugin's name taken by an installed one registered before it
                    # (hook order, e.g. trylast): the installed one is skipped
                    other = getattr(exc, "existing_provider", None)
                    if other is not None and self.package_of(other) is not None:
                        return other, exc, caller.name
                    raise  # not from an entry point: the author is here, fail loudly
        return None

    def _make_register(self, kind: str, provider: str, package: str | None) -> Callable[..., None]:
        def register(name: str, factory: Callable[..., Any], *, modality: str | None = None,
                     output_dim: Any = None, defaults: dict | None = None,
                     search_space: Callable[..., dict] | None = None, description: str = "",
                     columns: Sequence[str] | None = None, tags: Sequence[str] = (), **unknown: Any) -> None:
            if unknown:
                key = sorted(unknown)[0]
                close = close_match(key, REGISTER_KEYWORDS)
                hint = f" (did you mean {close!r}?)" if close else ""
                raise PluginError(f"{kind} {name!r} registered by plugin {provider!r}: register() got an unknown "
                                  f"keyword {key!r}{hint}; it takes name, factory and "
                                  f"{', '.join(REGISTER_KEYWORDS)}")
            for keyword, given in (("tags", tags), ("columns", columns)):
                if isinstance(given, (str, bytes)):  # (its characters would be the names: tags="manual" no tag)
                    raise PluginError(f"{kind} {name!r} registered by plugin {provider!r}: {keyword}={given!r} is one "
                                      f"string, not a list of names; write {keyword}=({given!r},)")
            self._add(ComponentSpec(kind=kind, name=name, factory=factory, provider=provider, package=package,
                                    modality=modality, output_dim=output_dim, defaults=dict(defaults or {}),
                                    search_space=search_space, description=description,
                                    columns=None if columns is None else tuple(str(c) for c in columns),
                                    tags=tuple(str(t) for t in tags)))
        return register

    def _add(self, spec: ComponentSpec) -> None:
        where = f"{spec.kind} registered by plugin {spec.provider!r}"
        if not isinstance(spec.name, str) or not _NAME_RE.match(spec.name):
            raise PluginError(f"invalid {where}: name {spec.name!r} must be lower-case letters, digits, '_' or '-', "
                              "starting with a letter")
        if spec.kind == "encoder" and spec.name == RESERVED_ENCODER_NAME:
            raise PluginError(f"invalid {where}: the encoder name {spec.name!r} is reserved (a configuration's "
                              "stack of encoders on one input); choose another name")
        if not callable(spec.factory):
            raise PluginError(f"invalid {where}: factory for {spec.name!r} is not callable")
        if spec.kind in ("encoder", "augmentation") and not spec.modality:
            raise PluginError(f"invalid {where}: {spec.kind} {spec.name!r} needs a modality=")
        if spec.search_space is not None and not callable(spec.search_space):
            raise PluginError(f"invalid {where}: search_space for {spec.name!r} is not callable")
        existing = self._specs[spec.kind].get(spec.name)
        if existing is not None:
            error = PluginError(f"duplicate {spec.kind} name {spec.name!r}: registered by plugin "
                                f"{existing.provider!r} and by plugin {spec.provider!r}")
            error.existing_provider = existing.provider
            raise error
        self._specs[spec.kind][spec.name] = spec

    # -- queries ----------------------------------------------------------------------
    def names(self, kind: str, pattern: str | None = None, modality: str | None = None) -> list[str]:
        specs = self._specs[kind].values()
        return sorted(s.name for s in specs
                      if (pattern is None or fnmatch.fnmatch(s.name, pattern))
                      and (modality is None or s.modality == modality))

    def specs(self, kind: str) -> list[ComponentSpec]:
        return [self._specs[kind][n] for n in sorted(self._specs[kind])]

    def get(self, kind: str, name: str) -> ComponentSpec:
        try:
            return self._specs[kind][name]
        except KeyError:
            known = sorted(self._specs[kind])
            close = close_match(str(name), known, words=True)
            hint = f" Did you mean {close!r}?" if close else ""
            raise UnknownComponentError(f"unknown {kind} {name!r}.{hint} Known {kind}s: {', '.join(known) or '(none)'}. "
                                        f"{self.where_plugins_come_from()}") from None

    def where_plugins_come_from(self) -> str:
        """For a name no plugin registered: the installed plugins that were skipped, and why; else
        how installed plugins are found."""
        left_out = plugins_left_out(self.plugin_manager)
        return left_out[:1].upper() + left_out[1:] if left_out else (
            f"Installed plugins are found through the {ENTRY_POINT_GROUP!r} entry-point group "
            f"([project.entry-points.{ENTRY_POINT_GROUP}] in a plugin's pyproject.toml); `automm plugins` lists "
            "what loaded")

    def modalities(self) -> list[str]:
        return sorted({s.modality for s in self._specs["encoder"].values() if s.modality})


def plugins_left_out(pm: pluggy.PluginManager) -> str:
    """The installed plugins that ``pm`` skipped, and why, or that ``AUTOMM_DISABLE_PLUGIN_AUTOLOAD``
    left out, for a message about a name (a component, a modality) none registered; "" where none was."""
    skipped = _skipped(pm)
    if skipped:
        items = "; ".join(f"{name!r}" + (f" ({info['package']})" if info.get("package")
                                          and f"({info['package']})" not in name else "")
                          + f" {info['reason']}" for name, info in sorted(skipped.items()))
        return f"installed plugins skipped, so their components are missing: {items} (`automm plugins` lists them)"
    if autoload_disabled():
        return f"{DISABLE_AUTOLOAD_ENV} is set: installed plugins are not loaded"
    return ""


def autoload_disabled() -> bool:
    """Whether ``AUTOMM_DISABLE_PLUGIN_AUTOLOAD`` turns entry-point plugins off."""
    return _truthy(os.environ.get(DISABLE_AUTOLOAD_ENV))


def get_plugin_manager(load_entrypoints: bool | None = None) -> pluggy.PluginManager:
    """A plugin manager with the hookspecs, the built-in plugins and (unless disabled)
    the plugins of the ``automm`` entry-point group."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    from .builtin import DEFAULT_PLUGINS

    for module_name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    if load_entrypoints is None:
        load_entrypoints = not autoload_disabled()
    if load_entrypoints:
        _load_entry_point_plugins(pm)
    return pm


class PluginLoadWarning(AutoMMWarning):
    """An installed plugin could not be loaded or registered, or implements a hook automm
    does not have; automm goes on without it (or without that hook)."""


def _load_entry_point_plugins(pm: pluggy.PluginManager) -> None:
    """Register every plugin of the ``automm`` entry-point group, in the order of their packages'
    names (the same wherever they are installed). A plugin that fails to import or to register (a
    hook whose arguments are not the hook's), or whose entry-point name another package's plugin
    holds, is skipped with a :class:`PluginLoadWarning` naming it and its distribution, so one
    broken package does not take the built-ins down with it; a hook name automm does not know is
    warned about."""
    from importlib.metadata import distributions

    found = [(dist, entry_point) for dist in distributions() for entry_point in dist.entry_points
             if entry_point.group == ENTRY_POINT_GROUP]
    # in the order of the packages' names, not of where they are installed (sys.path, a folder's listing):
    # which plugin keeps a name two register, and whose column-role rule is asked first, is the same everywhere
    found.sort(key=lambda pair: (_normalised(pair[0].metadata["Name"]), pair[1].name))
    for dist, entry_point in found:
        package = f"{dist.metadata['Name']} {dist.version}"
        if pm.get_plugin(entry_point.name) is not None or pm.is_blocked(entry_point.name):
            holder = _distributions(pm).get(entry_point.name)
            if holder is not None and distribution_name(holder) != dist.metadata["Name"]:  # (not one found twice)
                _skip_plugin(pm, entry_point.name, package,
                             f"its entry-point name is taken by the plugin of {holder}; one of the two "
                             "packages must rename its entry point", key=f"{entry_point.name} ({package})")
            continue
        try:
            plugin = entry_point.load()
        except Exception as exc:  # noqa: BLE001 - any import failure of third-party code
            _skip_plugin(pm, entry_point.name, package, f"could not be loaded: {exc!r}")
            continue
        try:
            pm.register(plugin, name=entry_point.name)
        except Exception as exc:  # noqa: BLE001 - pluggy's validation of third-party hooks
            if pm.get_plugin(entry_point.name) is not None:  # pluggy registers before it validates
                pm.unregister(name=entry_point.name)
            _skip_plugin(pm, entry_point.name, package, "could not be registered: " + " ".join(str(exc).split()))
            continue
        _distributions(pm)[entry_point.name] = package
        _warn_unknown_hooks(pm, plugin, entry_point.name, package)


def _normalised(distribution: str | None) -> str:
    """A distribution's name as the packaging standards compare them (``Automm_Audio``: ``automm-audio``)."""
    return re.sub(r"[-_.]+", "-", distribution or "").lower()


def _skip_plugin(pm: pluggy.PluginManager, name: str, package: str | None, reason: str,
                 key: str | None = None) -> None:
    """Record (for ``automm plugins``, under ``key``, default ``name``) and warn that plugin
    ``name`` is left out."""
    import warnings

    _skipped(pm)[key or name] = {"package": package, "reason": reason}
    warnings.warn(f"automm plugin {name!r}" + (f" from {package}" if package else "") + f" is skipped: {reason} "
                  f"(uninstall it, or set {DISABLE_AUTOLOAD_ENV}=1 to load only the built-ins)",
                  PluginLoadWarning, stacklevel=user_stacklevel())


def unknown_hooks(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """What is said of each of a registered plugin's ``@hookimpl`` functions that name no automm
    hook (a typo such as ``automm_register_encoder``: pluggy keeps them and never calls them), and
    of each function named as a hook but not marked ``@hookimpl`` (pluggy never sees it)."""
    known = sorted(n for n in dir(hookspecs) if n.startswith("automm_"))
    said = []
    for caller in pm.get_hookcallers(plugin) or ():
        if caller.has_spec():
            continue
        close = close_match(caller.name, known)
        hint = f"did you mean {close!r}? " if close else ""
        said.append(f"implements {caller.name!r}, which is not an automm hook, so it is never called ({hint}the "
                    f"hooks: {', '.join(known)})")
    # a hook's function without the marker: pluggy passes it over without a word
    marker, spec_marker = f"{hookspecs.PROJECT_NAME}_impl", f"{hookspecs.PROJECT_NAME}_spec"
    for name in sorted(set(dir(plugin)) & set(known)):
        function = getattr(plugin, name, None)
        if callable(function) and not hasattr(function, marker) and not hasattr(function, spec_marker):
            said.append(f"defines {name!r} without the @automm.hookimpl decorator, so it is never called "
                        "(from automm import hookimpl; put @hookimpl on the line above it)")
    return said


def _warn_unknown_hooks(pm: pluggy.PluginManager, plugin: object, name: str, package: str) -> None:
    """Warn about a plugin's hook functions that name no automm hook (:func:`unknown_hooks`)."""
    import warnings

    for said in unknown_hooks(pm, plugin):
        warnings.warn(f"automm plugin {name!r} from {package} {said}", PluginLoadWarning, stacklevel=user_stacklevel())


def distribution_name(package: str | None) -> str | None:
    """The distribution's name in a ``"distribution version"`` package label (None for None)."""
    return None if package is None else package.split()[0]


def _distributions(pm: pluggy.PluginManager) -> dict[str, str]:
    """Plugin name → "distribution version" for plugins loaded from entry points."""
    if not hasattr(pm, "automm_distributions"):
        pm.automm_distributions = {}
    return pm.automm_distributions


def skipped_plugins() -> dict[str, dict]:
    """Installed plugins left out of the registry: name → ``{"package", "reason"}`` (for a
    second package's plugin of a taken entry-point name, ``"name (package version)"``)."""
    return dict(_skipped(get_registry().plugin_manager))


def _skipped(pm: pluggy.PluginManager) -> dict[str, dict]:
    if not hasattr(pm, "automm_skipped"):
        pm.automm_skipped = {}
    return pm.automm_skipped


_lock = threading.Lock()
_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _registry
    with _lock:
        if _registry is None:
            _registry = Registry(get_plugin_manager())
        return _registry


def reset_registry(plugins: Iterable[object] = ()) -> Registry:
    """Rebuild the registry (after installing a plugin, or with extra in-process
    ``plugins`` registered, as tests do). Returns the new registry. A plugin that is also
    installed (a module its entry point names) is there once."""
    global _registry
    with _lock:
        pm = get_plugin_manager()
        for plugin in plugins:
            if pm.is_registered(plugin):  # loaded through its entry point already
                continue
            name = _plugin_name(plugin)
            if pm.get_plugin(name) is not None:
                raise PluginError(f"reset_registry: another plugin is registered as {name!r}; give each plugin "
                                  "its own module or class")
            pm.register(plugin, name=name)
        _registry = Registry(pm)
        return _registry


def split_component_choice(value: Any, argument: str) -> tuple[str, dict]:
    """``"name"`` or ``{"name": ..., **hyperparameters}`` → ``(name, hyperparameters)``; anything
    else raises :class:`~automm.exceptions.InputError` naming ``argument``."""
    from .exceptions import InputError

    if isinstance(value, str):
        return value, {}
    if isinstance(value, Mapping) and isinstance(value.get("name"), str):
        params = dict(value)
        return params.pop("name"), params
    raise InputError(f"{argument}: expected a component name or a dict with a 'name' key, got {value!r}")


def _plugin_name(plugin: object) -> str:
    """A readable name for an in-process plugin: its module, or its class's qualified name."""
    import types

    if isinstance(plugin, types.ModuleType):
        return plugin.__name__
    cls = plugin if isinstance(plugin, type) else type(plugin)
    return f"{cls.__module__}.{cls.__qualname__}"


def _check_modality_filter(reg: Registry, kind: str, modality: Any) -> None:
    """Refuse a ``modality`` filter that could only give an empty list by mistake: a modality no
    component has (a typo, ``"imgae"``), or any modality for a kind whose components have none
    (fusions and sample datasets are not of one modality)."""
    from .exceptions import InputError
    from .suggestions import did_you_mean

    if not any(s.modality for s in reg.specs(kind)):
        raise InputError(f"list_{kind}s: modality: {kind}s have no modality (none registered names one), so "
                         f"modality={modality!r} would list none; call list_{kind}s() without it")
    known = sorted({s.modality for k in KINDS for s in reg.specs(k) if s.modality})
    if modality not in known:
        raise InputError(f"list_{kind}s: modality: unknown modality {modality!r}; known modalities: "
                         f"{known}{did_you_mean(modality, known)}")


class _Lister(Protocol):
    def __call__(self, pattern: str | None = None, modality: str | None = None) -> list[str]: ...


def _lister(kind: str) -> _Lister:
    def list_components(pattern: str | None = None, modality: str | None = None) -> list[str]:
        reg = get_registry()
        if modality is not None:
            _check_modality_filter(reg, kind, modality)
        return reg.names(kind, pattern, modality)
    list_components.__name__ = f"list_{kind}s"
    list_components.__doc__ = (f"Names of registered {kind}s, optionally filtered by glob ``pattern`` and "
                               "``modality`` (a modality no component has is an ``InputError``"
                               + (", as is any for fusions and datasets, which have none" if kind in ("fusion", "dataset")
                                  else "") + ").")
    return list_components


list_encoders = _lister("encoder")
list_fusions = _lister("fusion")
list_augmentations = _lister("augmentation")
list_datasets = _lister("dataset")


def _checked_spec(kind: str, name: str, hyperparameters: Mapping[str, Any]) -> ComponentSpec:
    """The spec of ``name``, its ``hyperparameters``' names checked against its factory (a name
    it does not take is an ``InputError`` with did-you-mean, not the factory's ``TypeError``)."""
    spec = get_registry().get(kind, name)
    given = ("column_roles",) if kind == "encoder" and spec.modality == "tabular" else ()  # automm gives it in a fit
    spec.check_hyperparameters(hyperparameters, f"create_{kind}", also=given)
    return spec


def create_encoder(name: str, **hyperparameters: Any) -> Encoder:
    """Build the encoder ``name`` with its defaults updated by ``hyperparameters``."""
    return _checked_spec("encoder", name, hyperparameters).create(**hyperparameters)


def create_fusion(name: str, input_dims: Mapping[str, int], n_outputs: int, **hyperparameters: Any) -> Fusion:
    """Build the fusion ``name`` for inputs of the given widths."""
    return _checked_spec("fusion", name, hyperparameters).create(dict(input_dims), int(n_outputs), **hyperparameters)


def create_augmentation(name: str, **hyperparameters: Any) -> Augmentation | BatchAugmentation:
    """Build the augmentation ``name``."""
    return _checked_spec("augmentation", name, hyperparameters).create(**hyperparameters)


def load_dataset(name: str) -> pd.DataFrame:
    """The registered example dataset ``name`` as a pandas DataFrame (with a ``split`` column)."""
    frame = get_registry().get("dataset", name).factory()
    if "split" not in getattr(frame, "columns", ()):
        raise PluginError(f"dataset {name!r}: its loader must return a DataFrame with a 'split' column")
    return frame
