"""The conformance kit (automm.testing) run over every built-in component, and shown to
catch broken components."""

from __future__ import annotations

import importlib
import random

import numpy as np
import pytest
import torch

import automm
from automm import MISSING, BatchAugmentation, Encoder, Fusion, PluginError, hookimpl
from automm.builtin import DEFAULT_PLUGINS
from automm.testing import (ConformanceError, check_augmentation, check_component_registration, check_encoder,
                            check_fusion, check_role_inference, check_search_space)

TEXTS = ["a red cotton shirt", "blue denim jeans for men", "", "watch", "the quick brown fox"]


def _images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, size=(20, 24, 3), dtype=np.uint8), rng.random((16, 16)),
            rng.integers(0, 256, size=(40, 30, 4), dtype=np.uint8)]


TINY_ENCODERS = {
    "cnn": (_images, {"image_size": 16, "width": 4, "depth": 2, "output_dim": 8}),
    "resnet": (_images, {"image_size": 16, "width": 4, "depth": 2, "output_dim": 8}),
    "colour_histogram": (_images, {"image_size": 16, "hidden_dim": 4, "output_dim": 8}),
    "hashed_ngram": (lambda: TEXTS, {"n_buckets": 512, "emb_dim": 8, "output_dim": 8}),
    "gru": (lambda: TEXTS, {"max_length": 8, "emb_dim": 8, "hidden_dim": 8, "output_dim": 8}),
    "transformer": (lambda: TEXTS, {"max_length": 8, "d_model": 8, "n_heads": 2, "n_layers": 1, "ff_dim": 16,
                                    "output_dim": 8}),
}


@pytest.mark.parametrize("name", sorted(TINY_ENCODERS))
def test_builtin_encoder_conforms(name):
    values, hp = TINY_ENCODERS[name]
    # search draws are full-size models: check their search space without building them
    report = check_encoder(name, values(), build_search_draws=False, **hp)
    assert report.outputs.shape == (len(values()) + 1, 8)
    assert report.search_draws


def test_tabular_encoder_conforms():
    roles = {"price": "numeric", "colour": "categorical"}
    rows = [{"price": 3.5, "colour": "red"}, {"price": MISSING, "colour": "blue"},
            {"price": 10.0, "colour": MISSING}, {"price": 7, "colour": "red"}]
    report = check_encoder("tabular", rows, missing_value={"price": MISSING, "colour": MISSING},
                           column_roles=roles, emb_dim=4, hidden_dim=8, output_dim=6)
    assert report.output_dim == 6


def test_tabular_encoder_conforms_with_what_the_core_gives_by_default():
    # a missing row of missing cells and the columns' roles read from the rows, as the core gives them
    rows = [{"price": 3.5, "colour": "red"}, {"price": MISSING, "colour": "blue"},
            {"price": 10.0, "colour": MISSING}, {"price": 7, "colour": "red"}]
    report = check_encoder("tabular", rows, emb_dim=4, hidden_dim=8, output_dim=6)
    assert report.hyperparameters["column_roles"] == {"price": "numeric", "colour": "categorical"}


@pytest.mark.parametrize("name", ["concat", "attention", "gated", "late"])
def test_builtin_fusion_conforms(name):
    small = {"concat": {"proj_dim": 8, "hidden_dim": 8}, "attention": {"d_model": 8, "n_heads": 2},
             "gated": {"hidden_dim": 8}, "late": {"hidden_dim": 8}}[name]
    report = check_fusion(name, {"image_0": 6, "text_0": 4}, n_outputs=3, **small)
    assert report.outputs.shape[0] == 6


@pytest.mark.parametrize("name", ["random_resized_crop", "horizontal_flip", "color_jitter", "token_dropout",
                                  "token_swap", "modality_dropout", "mixup"])
def test_builtin_augmentation_conforms(name):
    check_augmentation(name)


@pytest.mark.parametrize("module", DEFAULT_PLUGINS)
def test_builtin_plugins_register_cleanly(module):
    check_component_registration(importlib.import_module(module))


def test_builtin_role_inference():
    check_role_inference(importlib.import_module("automm.roles"), ["a.png", "b.jpg"], "image")


def test_role_inference_is_asked_about_the_present_values_as_the_core_asks():
    """3 image paths and 2 missing values are an image column to the core; the kit said
    'categorical' (it passed the missing values to the rule)."""
    check_role_inference(importlib.import_module("automm.roles"), ["a.png", "b.jpg", None, None, "c.png"], "image")


# -- the kit catches broken components ---------------------------------------------------

class _WrongWidth(Encoder):
    modality = "text"
    output_dim = 4

    def __init__(self, declared=4):
        super().__init__()
        self.linear = torch.nn.Linear(1, 5)

    def preprocess(self, value, augment=None):
        return torch.tensor([0.0 if value is MISSING else float(len(str(value)))])

    def forward(self, batch):
        return self.linear(batch)


class _Unseeded(_WrongWidth):
    def __init__(self, declared=5):
        super().__init__()
        self.output_dim = 5

    def forward(self, batch):
        return self.linear(batch) + torch.rand(batch.shape[0], 5)  # not driven by the seed: breaks determinism


class _NoMissing(_WrongWidth):
    def __init__(self, declared=5):
        super().__init__()
        self.output_dim = 5

    def preprocess(self, value, augment=None):
        return torch.tensor([float(len(value))])  # len(MISSING) fails


class _LeakyFusion(Fusion):
    def __init__(self, input_dims, n_outputs):
        super().__init__()
        self.names = sorted(input_dims)
        self.linear = torch.nn.Linear(sum(input_dims.values()), 4)
        self.output_dim = 4

    def forward(self, embeddings, masks):
        return self.linear(torch.cat([embeddings[n] for n in self.names], dim=1))  # ignores masks


class _FalselyStatic(_WrongWidth):
    """Declares static samples, yet augments them."""

    def __init__(self, declared=5):
        super().__init__()
        self.output_dim = 5
        self.static_preprocess = True

    def preprocess(self, value, augment=None):
        text = "" if value is MISSING else str(value)
        if augment is not None:
            text = "".join(augment(list(text)))
        return torch.tensor([float(len(text))])


class _AugmentsTheRawText(_WrongWidth):
    """Gives augment the text itself: a text augmentation would then drop characters, not words."""

    def __init__(self, declared=5):
        super().__init__()
        self.output_dim = 5

    def preprocess(self, value, augment=None):
        text = "" if value is MISSING else str(value)
        if augment is not None:
            text = "".join(augment(text))
        return torch.tensor([float(len(text))])


class _NeverPrepared(_WrongWidth):
    """Says its one-off work is pending even for the values it has just prepared."""

    def __init__(self, declared=5):
        super().__init__()
        self.output_dim = 5

    def pending_share(self, values, *, cache_dir=None):
        return 1.0


class _PreprocessesWithABuffer(_WrongWidth):
    """Scales its samples by a registered buffer: moved to the GPU with the network, it no longer
    preprocesses on the CPU (the audio plugin's spectrogram window once did this)."""

    def __init__(self, declared=5):
        super().__init__()
        self.output_dim = 5
        self.register_buffer("scale", torch.tensor([0.5]), persistent=False)

    def preprocess(self, value, augment=None):
        return super().preprocess(value, augment) * self.scale


class _CpuOnlyEncoder(_WrongWidth):
    """Adds a bias made on the CPU whatever the device of its batch."""

    def __init__(self, declared=5):
        super().__init__()
        self.output_dim = 5

    def forward(self, batch):
        return self.linear(batch) + torch.ones(batch.shape[0], 5)


class _NoWidthFusion(_LeakyFusion):
    """Never sets output_dim (the class's 0)."""

    def __init__(self, input_dims, n_outputs):
        super().__init__(input_dims, n_outputs)
        del self.output_dim


class _WeightBlindSmoothing(BatchAugmentation):
    """Smooths the targets over every column: mixes the sample weights' column into the classes."""

    def apply_fused(self, fused, targets, generator):
        return fused, 0.9 * targets + 0.1 / targets.shape[1]


class _GlobalRandomSwap(automm.Augmentation):
    """Swaps two tokens chosen by torch's global generator, not the one it is given."""

    modality = "text"

    def __call__(self, value, generator):
        tokens = list(value)
        i = int(torch.randint(len(tokens) - 1, (1,)))
        tokens[i], tokens[i + 1] = tokens[i + 1], tokens[i]
        return tokens


def _bad_space(trial, prefix):
    return {"width": trial.suggest_int("width", 1, 4)}  # no prefix


def _own_prefix_space(trial, prefix):
    return {"p": trial.suggest_float("own_prefix.p", 0.0, 0.3)}  # its own name, not the prefix it is given


def _derived_space(trial, prefix):
    return {"p": trial.suggest_float(f"{prefix}half_p", 0.0, 0.2) * 2}  # a name the factory does not take


class _NumbersForTokens(automm.Augmentation):
    """Keeps the first token and turns the others into their lengths."""

    modality = "text"

    def __init__(self, p=0.1):
        self.p = p

    def __call__(self, value, generator):
        return list(value[:1]) + [len(token) for token in value[1:]]


class _CpuOnlyFusion(_LeakyFusion):
    """Masks its inputs with a tensor made on the CPU whatever the inputs' device."""

    def forward(self, embeddings, masks):
        zeros = {n: torch.zeros(embeddings[n].shape) for n in self.names}
        return self.linear(torch.cat([torch.where(masks[n][:, None], embeddings[n], zeros[n]) for n in self.names],
                                     dim=1))


class _CpuDrawDropout(BatchAugmentation):
    """Drops inputs with random draws left on the generator's device (the CPU)."""

    def apply_masks(self, masks, generator):
        return {name: mask & (torch.rand(mask.shape, generator=generator) > 0.1) for name, mask in masks.items()}


class _LearnsInPrepare(_WrongWidth):
    """Learns the values' mean length in prepare (which, at predict, sees the new values only)."""

    def __init__(self, declared=5):
        super().__init__()
        self.output_dim = 5
        self.mean_length = 0.0

    def prepare(self, values, *, cache_dir=None):
        present = [len(str(v)) for v in values if v is not MISSING]
        self.mean_length = float(np.mean(present)) if present else 0.0

    def preprocess(self, value, augment=None):
        return torch.tensor([0.0 if value is MISSING else len(str(value)) - self.mean_length])


class _WiderAtDepth3(_WrongWidth):
    """Declares output_dim=5 whatever its depth, but is 8 wide at depth 3, a value only its search draws."""

    def __init__(self, declared=5, depth=1):
        super().__init__()
        self.output_dim = 5
        self.linear = torch.nn.Linear(1, 8 if depth == 3 else 5)


def _depth_space(trial, prefix):
    return {"depth": trial.suggest_categorical(f"{prefix}depth", [3])}


class _BatchCentred(_LeakyFusion):
    """Reads the masks, then centres each batch: a row's output depends on its batch's other rows."""

    def forward(self, embeddings, masks):
        x = torch.cat([torch.where(masks[n][:, None], embeddings[n], 0.0) for n in self.names], dim=1)
        return self.linear(x - x.mean(0, keepdim=True))


class _FirstTwoProduct(_LeakyFusion):
    """A bilinear product of the first two inputs by name, reading the masks: a third input left out."""

    def __init__(self, input_dims, n_outputs):
        super().__init__(input_dims, n_outputs)
        self.first = torch.nn.ModuleList(torch.nn.Linear(input_dims[n], 4) for n in self.names[:2])

    def forward(self, embeddings, masks):
        out = 1
        for name, layer in zip(self.names[:2], self.first):
            present = masks[name][:, None]
            out = out * torch.where(present, layer(torch.where(present, embeddings[name], 0.0)), 1.0)
        return out


class _ClosedGates(_LeakyFusion):
    """The first input plus each other one through a gate that starts closed (tanh of a parameter at
    0, as Flamingo's): at its initial weights the others change nothing, which training changes."""

    def __init__(self, input_dims, n_outputs):
        super().__init__(input_dims, n_outputs)
        self.projections = torch.nn.ModuleDict({n: torch.nn.Linear(d, 4) for n, d in input_dims.items()})
        self.gates = torch.nn.ParameterDict({n: torch.nn.Parameter(torch.zeros(1)) for n in self.names[1:]})

    def forward(self, embeddings, masks):
        def projected(name):
            return self.projections[name](torch.where(masks[name][:, None], embeddings[name], 0.0))

        out = projected(self.names[0])
        for name in self.names[1:]:
            out = out + torch.tanh(self.gates[name]) * projected(name)
        return out


class _BrokenPlugin:
    @hookimpl
    def automm_register_encoders(self, register):
        register("wrong_width", _WrongWidth, modality="text", output_dim=4)
        register("unseeded", _Unseeded, modality="text", output_dim=5)
        register("no_missing", _NoMissing, modality="text", output_dim=5)
        register("falsely_static", _FalselyStatic, modality="text", output_dim=5)
        register("raw_text_augmented", _AugmentsTheRawText, modality="text", output_dim=5)
        register("never_prepared", _NeverPrepared, modality="text", output_dim=5)
        register("device_bound", _PreprocessesWithABuffer, modality="text", output_dim=5)
        register("cpu_only_encoder", _CpuOnlyEncoder, modality="text", output_dim=5)
        register("bad_space", _Unseeded, modality="text", output_dim=5, search_space=_bad_space)
        register("learns_in_prepare", _LearnsInPrepare, modality="text", output_dim=5)
        register("wider_at_depth_3", _WiderAtDepth3, modality="text", output_dim=5, defaults={"depth": 1},
                 search_space=_depth_space)

    @hookimpl
    def automm_register_fusions(self, register):
        register("leaky", _LeakyFusion)
        register("no_width", _NoWidthFusion)
        register("cpu_only", _CpuOnlyFusion)
        register("batch_centred", _BatchCentred)
        register("first_two", _FirstTwoProduct)
        register("closed_gates", _ClosedGates)

    @hookimpl
    def automm_register_augmentations(self, register):
        register("weight_blind", _WeightBlindSmoothing, modality="batch")
        register("global_random", _GlobalRandomSwap, modality="text")
        register("own_prefix", _NumbersForTokens, modality="text", defaults={"p": 0.1}, search_space=_own_prefix_space)
        register("numbers_for_tokens", _NumbersForTokens, modality="text")
        register("derived_space", _NumbersForTokens, modality="text", defaults={"p": 0.1}, search_space=_derived_space)
        register("cpu_draws", _CpuDrawDropout, modality="batch")


@pytest.fixture
def broken(fresh_registry):
    return fresh_registry(_BrokenPlugin())


def test_kit_catches_a_wrong_declared_width(broken):
    with pytest.raises(ConformanceError, match="wrong_width.*width 5.*output_dim=4"):
        check_encoder("wrong_width", ["a", "bb"])


def test_kit_catches_nondeterminism(broken):
    with pytest.raises(ConformanceError, match="unseeded.*(deterministic|alone vs in a batch)"):
        check_encoder("unseeded", ["a", "bb"])


def test_kit_catches_missing_value_failures(broken):
    with pytest.raises(ConformanceError, match="no_missing.*preprocess fails"):
        check_encoder("no_missing", ["a", "bb"])


def test_kit_catches_an_encoder_whose_static_samples_are_augmented(broken):
    with pytest.raises(ConformanceError, match="falsely_static.*static_preprocess=True, but preprocess applied augment"):
        check_encoder("falsely_static", ["a", "bb"])


def test_kit_and_training_catch_an_encoder_giving_augment_other_than_tokens(broken):
    """It passed the kit, and a fit with token_dropout dropped characters without a word."""
    with pytest.raises(ConformanceError, match=r"raw_text_augmented.*preprocess gave augment a str; give it a list of "
                                               r"str tokens \(automm.components.text.tokenize"):
        check_encoder("raw_text_augmented", ["a b", "bb"])
    with pytest.raises(PluginError, match=r"the encoder of input 'text_0' \(_AugmentsTheRawText\): preprocess gave "
                                          "augment a str"):
        automm.AutoMM(encoders={"text": "raw_text_augmented"}, augmentations=["token_dropout"], max_epochs=1,
                      column_types={"x0": "text"}, num_workers=0).fit(["a b c", "d e"] * 8, ["x", "y"] * 8)


def test_kit_catches_one_off_work_still_pending_after_prepare(broken):
    with pytest.raises(ConformanceError, match="never_prepared.*pending_share says 1.0 of the values just prepared"):
        check_encoder("never_prepared", ["a", "bb"])


def test_kit_catches_preprocessing_that_moves_with_the_network(broken):
    with pytest.raises(ConformanceError, match="device_bound.*(preprocess fails once the network is moved|"
                                               "tensors on \\['meta'\\])"):
        check_encoder("device_bound", ["a", "bb"])


def test_kit_catches_an_encoder_that_learns_from_the_values_it_prepares(broken):
    """Passed before: the kit's round trip prepared the restored encoder with the same values."""
    with pytest.raises(ConformanceError, match="learns_in_prepare.*a value encoded after prepare of other values"):
        check_encoder("learns_in_prepare", ["a", "bbbbbbbb", "cc"])


def test_kit_runs_each_search_draw_and_checks_its_width(broken):
    """Passed before: only the built encoder's declared output_dim was compared."""
    with pytest.raises(ConformanceError, match=r"wider_at_depth_3.*forward of search draw \{'depth': 3\}"):
        check_encoder("wider_at_depth_3", ["a", "bb"])


def test_kit_catches_a_fusion_whose_rows_depend_on_their_batch(broken):
    with pytest.raises(ConformanceError, match="batch_centred.*row 0 fused alone vs in a batch"):
        check_fusion("batch_centred", {"a": 3, "b": 2}, n_outputs=2)


def test_kit_catches_unprefixed_search_parameters(broken):
    with pytest.raises(ConformanceError, match=r"encoder 'bad_space' \(plugin '.*'\) suggested 'width', which does "
                                               r"not start with its prefix 'checked_input.bad_space.'; name every"):
        check_search_space("bad_space")


def test_kit_gives_a_search_space_the_prefix_the_search_gives_it(broken):
    # the space writes its own name as the prefix: the search refuses it, and so must the kit
    with pytest.raises(ConformanceError, match=r"suggested 'own_prefix.p', which does not start with its prefix "
                                               r"'augment.own_prefix.'"):
        check_search_space("own_prefix", "augmentation")


def test_kit_catches_a_search_space_suggesting_names_the_factory_does_not_take(broken):
    """random_resized_crop suggested min_scale and returned scale=[min_scale, 1.0]: the README's own
    search_space example, {"min_scale": [0.5, 0.8]}, was refused, and fixing scale left min_scale sampled."""
    with pytest.raises(ConformanceError, match=r"derived_space.*suggests \['half_p'\], which the factory does not take"):
        check_search_space("derived_space", "augmentation")


def test_every_installed_components_searched_names_can_be_narrowed():
    from automm.registry import get_registry

    for kind in ("encoder", "fusion", "augmentation"):
        for spec in get_registry().specs(kind):
            check_search_space(spec.name, kind)


def test_kit_catches_a_text_augmentation_returning_other_tokens_than_str(broken):
    with pytest.raises(ConformanceError, match=r"numbers_for_tokens.*a list holding a int \(5\)"):
        check_augmentation("numbers_for_tokens")


def test_kit_catches_an_encoder_making_cpu_tensors_beside_its_batch(broken):
    with pytest.raises(ConformanceError, match=r"cpu_only_encoder.*forward fails once its inputs are on another"):
        check_encoder("cpu_only_encoder", ["a", "bb"])


def test_kit_catches_a_fusion_making_cpu_tensors_beside_its_inputs(broken):
    with pytest.raises(ConformanceError, match=r"cpu_only.*forward fails once its inputs are on another device"):
        check_fusion("cpu_only")


def test_kit_catches_a_batch_augmentation_mixing_cpu_draws_with_the_masks(broken):
    with pytest.raises(ConformanceError, match=r"cpu_draws.*apply_masks fails once its inputs are on another device"
                                               r".*generator=generator\)\.to\(masks\[name\]\.device\)"):
        check_augmentation("cpu_draws")


def test_kit_catches_a_batch_augmentation_that_mixes_the_sample_weights_into_the_classes(broken):
    with pytest.raises(ConformanceError, match="sample weights' last column"):
        check_augmentation("weight_blind")


def test_kit_catches_a_fusion_that_reads_missing_inputs(broken):
    with pytest.raises(ConformanceError, match="leaky.*(NaN|missing)"):
        check_fusion("leaky")


def test_kit_says_how_to_fix_a_fusion_that_reads_missing_inputs(broken):
    with pytest.raises(ConformanceError, match=r"leaky.*a missing input's embedding \(even NaN\) must not change the "
                                               r"output: use masks\[name\] to ignore missing inputs, e.g. "
                                               r"torch.where\(masks\[name\]\[:, None\], emb, 0\)"):
        check_fusion("leaky")


def test_kit_says_where_an_augmentations_random_numbers_must_come_from(broken):
    with pytest.raises(ConformanceError, match=r"global_random.*is not deterministic.*; draw every random number from "
                                               r"the generator argument .*never from random, numpy or torch's global"):
        check_augmentation("global_random")


def test_kit_catches_a_fusion_that_leaves_an_input_out(broken):
    # had passed the kit: the texts (text_0 after image_0 and tabular) never reached the model
    with pytest.raises(ConformanceError, match=r"first_two.*the output does not depend on input 'text_0': its "
                                               r"embedding replaced by other values changed no row that has it"):
        check_fusion("first_two")
    check_fusion("first_two", {"image_0": 8, "text_0": 5})  # given two inputs, it uses both


def test_kit_passes_a_fusion_whose_gates_start_closed(broken):
    # had failed "the output does not depend on input 'tabular'": a zero-initialised gate is no input left out
    check_fusion("closed_gates")


def test_kit_says_how_to_fix_a_fusion_without_an_output_dim(broken):
    with pytest.raises(ConformanceError, match=r"no_width.*has output_dim 0 \(never set\?\); set self.output_dim in "
                                               r"__init__ to the width forward returns"):
        check_fusion("no_width")


def test_kit_catches_invalid_defaults():
    class BadDefaults:
        @hookimpl
        def automm_register_fusions(self, register):
            register("bad_defaults", _LeakyFusion, defaults={"x": object()})

    with pytest.raises(ConformanceError, match="not JSON-serialisable"):
        check_component_registration(BadDefaults())
    assert "bad_defaults" not in automm.list_fusions()  # the process-wide registry is untouched


def test_kit_names_a_misspelt_hook():
    """It said only "registers no encoder, fusion, augmentation or dataset"."""
    class Typo:
        @hookimpl
        def automm_register_encoder(self, register):
            register("never_seen", _WrongWidth, modality="text", output_dim=5)

    with pytest.raises(ConformanceError, match=r"implements 'automm_register_encoder', which is not an automm hook, so "
                                               r"it is never called \(did you mean 'automm_register_encoders'\?"):
        check_component_registration(Typo())


def test_kit_checks_sample_datasets():
    import pandas as pd

    class Datasets:
        @hookimpl
        def automm_register_datasets(self, register):
            register("only_train", lambda: pd.DataFrame({"x": [1, 2], "split": ["train", "train"]}))

    class WrongColumns:
        @hookimpl
        def automm_register_datasets(self, register):
            register("wrong_columns", lambda: pd.DataFrame({"x": [1, 2], "split": ["train", "test"]}),
                     columns=("x", "y", "split"))

    with pytest.raises(ConformanceError, match="only_train.*'train' and 'test' rows"):
        check_component_registration(Datasets())
    with pytest.raises(ConformanceError, match=r"wrong_columns.*declares columns \['x', 'y', 'split'\] but loads"):
        check_component_registration(WrongColumns())

    class Good:
        @hookimpl
        def automm_register_datasets(self, register):
            register("two_rows", lambda: pd.DataFrame({"x": [1, 2], "split": ["train", "test"]}),
                     columns=("x", "split"))

    assert [s.name for s in check_component_registration(Good())["dataset"]] == ["two_rows"]


class _CostsNegative(_WrongWidth):
    static_preprocess = True

    def __init__(self, declared=5):
        super().__init__()
        self.output_dim = 5

    def prepare_seconds(self, values):
        return -1.0


class _CostlyPlugin:
    @hookimpl
    def automm_register_encoders(self, register):
        register("costly", _CostsNegative, modality="text", output_dim=5)


def test_kit_checks_what_predicting_new_values_costs(fresh_registry):
    fresh_registry(_CostlyPlugin())
    with pytest.raises(ConformanceError, match="costly.*prepare_seconds must be a finite number of seconds >= 0"):
        check_encoder("costly", ["a b", "c d"])


def _fake_distribution(tmp_path, monkeypatch, name: str, module_source: str | None, entry_points: str = "") -> None:
    """A distribution ``name`` 0.1 on sys.path, as pip leaves one (module ``name`` with _ for -)."""
    import importlib
    import textwrap

    module = name.replace("-", "_")
    if module_source is not None:
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(module_source))
    dist = tmp_path / f"{module}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    if entry_points:
        (dist / "entry_points.txt").write_text(entry_points)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()


_FUSION_MODULE = """
    import torch
    from automm import Fusion, hookimpl

    class Mean(Fusion):
        def __init__(self, input_dims, n_outputs):
            super().__init__()
            self.output_dim = max(input_dims.values())

    @hookimpl
    def automm_register_fusions(register):
        register("kit_mean", Mean)
"""


def test_check_installed_finds_a_missing_entry_point_and_missing_components(tmp_path, monkeypatch):
    import sys

    from automm.registry import DISABLE_AUTOLOAD_ENV, PluginLoadWarning
    from automm.testing import check_installed

    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    try:
        with pytest.raises(ConformanceError, match="distribution 'automm-kit-absent': is not installed"):
            check_installed("automm-kit-absent")
        (tmp_path / "a").mkdir()
        _fake_distribution(tmp_path / "a", monkeypatch, "automm-kit-noep", _FUSION_MODULE)
        with pytest.raises(ConformanceError, match=r"distribution 'automm-kit-noep': declares no entry point in the "
                                                   r"'automm' group, so automm never loads it; add "
                                                   r"\[project.entry-points.automm\]"):
            check_installed("automm-kit-noep")
        (tmp_path / "b").mkdir()
        _fake_distribution(tmp_path / "b", monkeypatch, "automm-kit-ep", _FUSION_MODULE,
                           "[automm]\nkit_ep = automm_kit_ep\n")
        automm.reset_registry()  # the process registry, with the new distribution's entry point
        assert [(s.name, s.package) for s in check_installed("automm-kit-ep", expected={"fusion": ["kit_mean"]})[
            "fusion"]] == [("kit_mean", "automm-kit-ep 0.1")]  # (the package was None: as automm plugins lists it now)
        with pytest.raises(ConformanceError, match=r"'automm-kit-ep': does not register the fusions \['kit_film'\] "
                                                   r"\(its entry points: kit_ep = automm_kit_ep\)"):
            check_installed("automm-kit-ep", expected={"fusion": ["kit_film"]})

        # a second package whose entry point has the same name: one of them is left out, and said so
        # (it was dropped silently, and the kit passed the package automm did not load)
        (tmp_path / "c").mkdir()
        _fake_distribution(tmp_path / "c", monkeypatch, "automm-kit-twin", _FUSION_MODULE.replace("kit_mean", "kit_twin"),
                           "[automm]\nkit_ep = automm_kit_twin\n")
        with pytest.warns(PluginLoadWarning, match=r"automm plugin 'kit_ep' from automm-kit-\w+ 0.1 is skipped: its "
                                                   r"entry-point name is taken by the plugin of automm-kit-\w+ 0.1"):
            automm.reset_registry()
        loaded = automm.get_registry().package_of("kit_ep").split()[0]
        left_out = ({"automm-kit-ep", "automm-kit-twin"} - {loaded}).pop()
        check_installed(loaded)
        with pytest.raises(ConformanceError, match=f"distribution '{left_out}': entry point 'kit_ep' is skipped by "
                                                   "automm: its entry-point name is taken"):
            check_installed(left_out)

        # autoloading off: automm cannot use the package, whatever it holds
        monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
        automm.reset_registry()
        with pytest.raises(ConformanceError, match=f"'{loaded}': is not loaded by automm here: {DISABLE_AUTOLOAD_ENV} "
                                                   "is set"):
            check_installed(loaded)
    finally:
        for module in ("automm_kit_noep", "automm_kit_ep", "automm_kit_twin"):
            sys.modules.pop(module, None)
        monkeypatch.undo()
        automm.reset_registry()


class _EveryRowEmpty(_WrongWidth):
    """Reads every value, even those seen in fit, as nothing: the model would read all as missing."""

    def __init__(self, declared=5):
        super().__init__()
        self.output_dim = 5

    def empty_rows(self, batch):
        return torch.ones(batch.shape[0], dtype=torch.bool)


class _FloatEmpty(_EveryRowEmpty):
    def empty_rows(self, batch):
        return batch[:, 0] * 0.0  # floats, not bools


class _EmptyRowsPlugin:
    @hookimpl
    def automm_register_encoders(self, register):
        register("every_row_empty", _EveryRowEmpty, modality="text", output_dim=5)
        register("float_empty", _FloatEmpty, modality="text", output_dim=5)


def test_kit_checks_the_rows_an_encoder_reads_as_nothing(fresh_registry):
    fresh_registry(_EmptyRowsPlugin())
    with pytest.raises(ConformanceError, match=r"every_row_empty.*empty_rows reads values seen in fit as nothing"):
        check_encoder("every_row_empty", ["a", "bb"])
    with pytest.raises(ConformanceError, match=r"float_empty.*empty_rows returned a torch.float32 tensor of shape \(2,\)"):
        check_encoder("float_empty", ["a", "bb"])


class _NoGradEncoder(_WrongWidth):
    """Not frozen, yet its forward runs under no_grad: its parameters never train."""

    def __init__(self):
        super().__init__()
        self.output_dim = 5

    def forward(self, batch):
        with torch.no_grad():
            return self.linear(batch)


class _ParametersUnused(_WrongWidth):
    """Its output requires a gradient, but none reaches its parameters."""

    def __init__(self):
        super().__init__()
        self.output_dim = 5

    def forward(self, batch):
        return batch.repeat(1, 5) + 0.0 * self.linear(batch)


class _NoGradFusion(_LeakyFusion):
    def forward(self, embeddings, masks):
        with torch.no_grad():
            return self.linear(torch.cat([torch.where(masks[n][:, None], embeddings[n], 0.0) for n in self.names], 1))


class _CleansMissingNaN(_LeakyFusion):
    """Replaces NaN by zeros but still reads the missing inputs' embeddings."""

    def forward(self, embeddings, masks):
        return self.linear(torch.cat([torch.nan_to_num(embeddings[n]) for n in self.names], dim=1))


class _UntrainedPlugin:
    @hookimpl
    def automm_register_encoders(self, register):
        register("no_grad", _NoGradEncoder, modality="text", output_dim=5)
        register("parameters_unused", _ParametersUnused, modality="text", output_dim=5)

    @hookimpl
    def automm_register_fusions(self, register):
        register("no_grad_fusion", _NoGradFusion)
        register("cleans_nan", _CleansMissingNaN)


def test_kit_names_a_component_whose_output_carries_no_gradient(fresh_registry):
    """A non-frozen encoder (or fusion) computing under torch.no_grad() failed the kit with a bare
    RuntimeError from backward (\"element 0 of tensors does not require grad\"), naming neither."""
    fresh_registry(_UntrainedPlugin())
    with pytest.raises(ConformanceError, match=r"no_grad.*not frozen \(frozen=False\), but forward's output carries "
                                               r"no gradient .*set frozen=True"):
        check_encoder("no_grad", TEXTS[:2])
    with pytest.raises(ConformanceError, match="no_grad_fusion.*carries no gradient"):
        check_fusion("no_grad_fusion", check_search=False)


def test_kit_catches_an_encoder_whose_parameters_get_no_gradient(fresh_registry):
    fresh_registry(_UntrainedPlugin())
    with pytest.raises(ConformanceError, match="parameters_unused.*no parameter receives a gradient"):
        check_encoder("parameters_unused", TEXTS[:2])


def test_kit_catches_a_fusion_reading_missing_inputs_with_their_nan_cleaned(fresh_registry):
    """Finite outputs are not enough: a missing input's embedding must not change them."""
    fresh_registry(_UntrainedPlugin())
    with pytest.raises(ConformanceError, match="cleans_nan.*the missing inputs' embeddings changed the output"):
        check_fusion("cleans_nan", check_search=False)


class _NumpySeeded(_WrongWidth):
    """Initialises its weights from numpy's global generator, which no seed of torch's drives."""

    def __init__(self):
        super().__init__()
        self.output_dim = 5
        with torch.no_grad():
            self.linear.weight.copy_(torch.from_numpy(np.random.rand(5, 1)))


class _ForgetsTheImputedValue(_WrongWidth):
    """Fills a missing text with the mean length it learns in fit, but saves no state: a loaded model
    reads missing texts otherwise."""

    def __init__(self):
        super().__init__()
        self.output_dim = 5
        self.fill = 0.0

    def fit(self, values):
        lengths = [len(str(v)) for v in values if v is not MISSING]
        self.fill = sum(lengths) / len(lengths)
        return self

    def preprocess(self, value, augment=None):
        return torch.tensor([self.fill if value is MISSING else float(len(str(value)))])


class _ForgetsTheScale(_WrongWidth):
    """Divides every length by a scale it learns in fit, but saves no state: a loaded model reads
    every text otherwise (the kit blamed prepare for it)."""

    def __init__(self):
        super().__init__()
        self.output_dim = 5
        self.scale = 1.0

    def fit(self, values):
        self.scale = 1.0 + max(len(str(v)) for v in values if v is not MISSING)
        return self

    def preprocess(self, value, augment=None):
        return torch.tensor([0.0 if value is MISSING else len(str(value)) / self.scale])


class _NoisyPreprocess(_WrongWidth):
    """Adds Python's random noise to each sample (the kit named it a batch dependence)."""

    def __init__(self):
        super().__init__()
        self.output_dim = 5

    def preprocess(self, value, augment=None):
        return super().preprocess(value) + random.random()


class _StatePlugin:
    @hookimpl
    def automm_register_encoders(self, register):
        register("numpy_seeded", _NumpySeeded, modality="text", output_dim=5)
        register("forgets_fill", _ForgetsTheImputedValue, modality="text", output_dim=5)
        register("forgets_scale", _ForgetsTheScale, modality="text", output_dim=5)
        register("noisy_preprocess", _NoisyPreprocess, modality="text", output_dim=5)


def test_kit_catches_weights_drawn_from_another_generator_than_torchs(fresh_registry):
    fresh_registry(_StatePlugin())
    with pytest.raises(ConformanceError, match=r"numpy_seeded.*two builds under seed 0 \(deterministic\)"):
        check_encoder("numpy_seeded", TEXTS[:2])


def test_kit_catches_state_learnt_in_fit_that_is_not_saved(fresh_registry):
    fresh_registry(_StatePlugin())
    with pytest.raises(ConformanceError, match=r"forgets_fill.*save/load round trip"):
        check_encoder("forgets_fill", TEXTS[:2])


def test_kit_names_unsaved_state_of_every_value_as_the_round_trip_not_prepare(fresh_registry):
    """The kit said "a value encoded after prepare of other values (what the encoder learns belongs in fit ...)"
    of an encoder that did learn in fit but did not save it."""
    fresh_registry(_StatePlugin())
    with pytest.raises(ConformanceError, match=r"forgets_scale.*save/load round trip.*get_state/set_state"):
        check_encoder("forgets_scale", TEXTS[:2])


def test_kit_names_random_draws_in_preprocess_as_nondeterminism(fresh_registry):
    """The kit said "a value encoded alone vs in a batch" of noise drawn in preprocess."""
    fresh_registry(_StatePlugin())
    with pytest.raises(ConformanceError, match=r"noisy_preprocess.*encoded twice.*not deterministic"):
        check_encoder("noisy_preprocess", TEXTS[:2])


class _PopsInPlace(automm.Augmentation):
    """Drops a token by deleting it from the list it is given."""

    modality = "text"

    def __call__(self, value, generator):
        if len(value) > 1:
            value.pop(int(torch.randint(len(value), (1,), generator=generator)))
        return value


class _BlanksInPlace(automm.Augmentation):
    """Changes the image it is given in place (always the same way, so every call agrees)."""

    modality = "image"

    def __call__(self, value, generator):
        value[..., 0] = 0
        return value


class _RevivesMissing(BatchAugmentation):
    """Modality dropout that redraws every mask, also the missing inputs'."""

    def apply_masks(self, masks, generator):
        return {name: torch.rand(mask.shape, generator=generator).to(mask.device) > 0.1 for name, mask in masks.items()}


class _SmoothingWithoutUniform(BatchAugmentation):
    """Label smoothing that scales the targets down but forgets to add the uniform part."""

    def apply_fused(self, fused, targets, generator):
        return fused, 0.9 * targets


class _BrokenAugmentationsPlugin:
    @hookimpl
    def automm_register_augmentations(self, register):
        register("pops_in_place", _PopsInPlace, modality="text")
        register("blanks_in_place", _BlanksInPlace, modality="image")
        register("revives_missing", _RevivesMissing, modality="batch")
        register("smoothing_without_uniform", _SmoothingWithoutUniform, modality="batch")


def test_kit_catches_an_augmentation_that_changes_its_input_in_place(fresh_registry):
    """A random in-place change was reported as 'is not deterministic ... draw every random number
    from the generator argument', sending the author to the wrong fix."""
    fresh_registry(_BrokenAugmentationsPlugin())
    for name in ("pops_in_place", "blanks_in_place"):
        with pytest.raises(ConformanceError, match=f"{name}.*modified its input sample in place"):
            check_augmentation(name)


def test_kit_catches_a_batch_augmentation_that_marks_a_missing_input_present(fresh_registry):
    fresh_registry(_BrokenAugmentationsPlugin())
    with pytest.raises(ConformanceError, match=r"revives_missing.*turned a missing input \(image_0\) into a present"):
        check_augmentation("revives_missing")


def test_kit_catches_mixed_soft_targets_that_do_not_sum_to_one(fresh_registry):
    fresh_registry(_BrokenAugmentationsPlugin())
    with pytest.raises(ConformanceError, match="smoothing_without_uniform.*soft class targets summing to 1"):
        check_augmentation("smoothing_without_uniform")


def _global_draws():
    return torch.rand(4).tolist(), np.random.rand(2).tolist(), random.random()


def _draws_after(check):
    torch.manual_seed(7), np.random.seed(7), random.seed(7)
    check()
    return _global_draws()


@pytest.mark.parametrize("check", [
    lambda: check_encoder("gru", TEXTS[:2], build_search_draws=False, max_length=8, emb_dim=8, hidden_dim=8, output_dim=8),
    lambda: check_fusion("concat", check_search=False),
], ids=["encoder", "fusion"])
def test_the_kit_leaves_the_callers_random_generators_as_it_found_them(check):
    """The kit seeds torch's global generator to build components as the core does: a plugin
    author's test suite drew other numbers after a check than without it (the encoder's and
    the fusion's checks changed torch's next draws)."""
    expected = _draws_after(lambda: None)
    assert _draws_after(check) == expected


def test_a_failing_check_leaves_the_callers_random_generators_too(broken):
    def failing():
        with pytest.raises(ConformanceError, match="global_random"):
            check_augmentation("global_random")  # it draws from torch's global generator itself

    assert _draws_after(failing) == _draws_after(lambda: None)
