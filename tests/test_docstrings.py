"""The public API documents itself: every name of ``automm.__all__`` has a docstring of its own,
and ``AutoMM``'s "Parameters" section names exactly the parameters of its ``__init__``, in order,
each with its default, as scikit-learn's estimators document theirs (``name : type, default=...``)."""

from __future__ import annotations

import ast
import inspect
import re

import automm


def _documented_parameters(cls) -> dict[str, str]:
    """``name -> default`` (as written) of each entry of the numpydoc "Parameters" section."""
    doc = inspect.getdoc(cls)
    section = doc.split("Parameters\n----------\n", 1)[1]
    section = re.split(r"\n\n\S[^\n]*\n-{3,}\n", section, maxsplit=1)[0]  # up to the next section, if any
    entries = re.findall(r"^(\w+) : (.*)$", section, re.M)
    return {name: (re.search(r"default=(.+)$", kind).group(1) if "default=" in kind else "") for name, kind in entries}


def test_the_automm_docstring_lists_exactly_the_init_parameters_with_their_defaults():
    """The docstring named the parameters in groups ("max_epochs, batch_size (...), learning_rate,
    ...") and gave no default but for a few, in their prose: a reader of ``help(AutoMM)`` could not
    learn that max_epochs is 20 or learning_rate 2e-3 (and cache_dir's default left out
    ``$XDG_CACHE_HOME``, which the feature cache reads)."""
    documented = _documented_parameters(automm.AutoMM)
    signature = inspect.signature(automm.AutoMM.__init__).parameters
    expected = [name for name in signature if name != "self"]
    assert list(documented) == expected
    assert [name for name, default in documented.items() if not default] == []
    assert {name: ast.literal_eval(default) for name, default in documented.items()} == {
        name: signature[name].default for name in expected}


def test_every_public_name_has_a_docstring_of_its_own():
    missing = []
    for name in automm.__all__:
        value = getattr(automm, name)
        if isinstance(value, str):  # __version__
            continue
        # (an instance, MISSING or hookimpl: its class's)
        doc = value.__doc__ if (inspect.isclass(value) or inspect.isroutine(value)) else type(value).__doc__
        if not (doc or "").strip():
            missing.append(name)
    assert missing == []
