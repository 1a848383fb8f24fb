"""The explicit list of built-in plugins, registered before any third-party plugin."""

__all__ = ["DEFAULT_PLUGINS"]

DEFAULT_PLUGINS = (
    "automm.components.image",
    "automm.components.text",
    "automm.components.tabular",
    "automm.components.trees",
    "automm.components.fusions",
    "automm.components.augmentations",
    "automm.roles",
    "automm.datasets",
)
