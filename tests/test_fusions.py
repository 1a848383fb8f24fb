"""Tests for the built-in fusions (automm.components.fusions)."""

from __future__ import annotations

import inspect

import optuna
import pytest
import torch
from torch import nn

from automm.components.base import Fusion
from automm.components.fusions import (
    AttentionFusion,
    CompareFusion,
    ConcatFusion,
    GatedFusion,
    NeighborsFusion,
    SumFusion,
    LateFusion,
    attention_search_space,
    automm_register_fusions,
    compared_pairs,
    concat_search_space,
    gated_search_space,
    late_search_space,
)

FUSIONS = {
    "concat": (ConcatFusion, concat_search_space),
    "compare": (CompareFusion, concat_search_space),
    "attention": (AttentionFusion, attention_search_space),
    "gated": (GatedFusion, gated_search_space),
    "late": (LateFusion, late_search_space),
}
# Small widths keep every test fast; "b.text" checks that dotted input names work.
INPUT_DIMS = {"b.text": 6, "a_image": 10, "c": 3}
N_OUTPUTS = 3
BATCH = 8


def build(name: str, **hyperparameters) -> Fusion:
    factory, _ = FUSIONS[name]
    torch.manual_seed(0)
    return factory(dict(INPUT_DIMS), N_OUTPUTS, **hyperparameters)


def random_batch(seed: int = 0, batch: int = BATCH) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {name: torch.randn(batch, dim, generator=generator) for name, dim in INPUT_DIMS.items()}


def all_present(batch: int = BATCH) -> dict[str, torch.Tensor]:
    return {name: torch.ones(batch, dtype=torch.bool) for name in INPUT_DIMS}


def some_missing(batch: int = BATCH) -> dict[str, torch.Tensor]:
    masks = all_present(batch)
    masks["a_image"][::2] = False
    masks["c"][1::3] = False
    masks["b.text"][0] = False  # sample 0 lacks every input
    masks["a_image"][0] = False
    masks["c"][0] = False
    return masks


@pytest.fixture(params=sorted(FUSIONS))
def fusion_name(request) -> str:
    return request.param


def test_output_shape_and_flags(fusion_name):
    fusion = build(fusion_name).eval()
    out = fusion(random_batch(), all_present())
    assert isinstance(fusion, Fusion)
    assert out.shape == (BATCH, fusion.output_dim)
    assert fusion.produces_outputs is (fusion_name == "late")
    if fusion_name == "late":
        assert fusion.output_dim == N_OUTPUTS


def test_default_output_dims():
    assert build("concat").output_dim == 256
    assert build("attention").output_dim == 64
    assert build("gated").output_dim == 128
    assert build("concat", n_layers=0, proj_dim=8).output_dim == len(INPUT_DIMS) * 9
    out = build("concat", n_layers=0, proj_dim=8).eval()(random_batch(), all_present())
    assert out.shape == (BATCH, len(INPUT_DIMS) * 9)


def test_defaults_match_constructor_signature(fusion_name):
    factory, _ = FUSIONS[fusion_name]
    parameters = inspect.signature(factory).parameters
    hyperparameters = {name: p.default for name, p in parameters.items() if name not in ("input_dims", "n_outputs")}
    assert hyperparameters == factory.defaults


def test_finite_with_some_and_all_inputs_missing(fusion_name):
    fusion = build(fusion_name).eval()
    out = fusion(random_batch(), some_missing())
    assert torch.isfinite(out).all()
    none_present = {name: torch.zeros(BATCH, dtype=torch.bool) for name in INPUT_DIMS}
    out = fusion(random_batch(), none_present)
    assert out.shape == (BATCH, fusion.output_dim)
    assert torch.isfinite(out).all()


def test_masked_inputs_do_not_influence_output(fusion_name):
    fusion = build(fusion_name).eval()
    masks = some_missing()
    embeddings = random_batch(seed=1)
    reference = fusion(embeddings, masks)
    changed = {name: values.clone() for name, values in embeddings.items()}
    for name, values in changed.items():
        values[~masks[name]] = torch.randn(int((~masks[name]).sum()), values.shape[1]) * 1e3
    changed["c"][~masks["c"]] = float("nan")
    out = fusion(changed, masks)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, reference, atol=1e-5, rtol=1e-5)
    # Present values, by contrast, do matter.
    present_b = masks["b.text"]
    changed["b.text"][present_b] = torch.randn(int(present_b.sum()), INPUT_DIMS["b.text"])
    assert not torch.allclose(fusion(changed, masks), reference, atol=1e-4)


def test_output_is_per_sample(fusion_name):
    fusion = build(fusion_name).eval()
    embeddings, masks = random_batch(), some_missing()
    full = fusion(embeddings, masks)
    single = fusion({k: v[3:4] for k, v in embeddings.items()}, {k: v[3:4] for k, v in masks.items()})
    torch.testing.assert_close(single, full[3:4], atol=1e-5, rtol=1e-5)


def test_gradients_reach_every_parameter(fusion_name):
    fusion = build(fusion_name).train()
    embeddings = {name: values.requires_grad_() for name, values in random_batch().items()}
    out = fusion(embeddings, all_present())
    out.pow(2).sum().backward()
    for param_name, param in fusion.named_parameters():
        assert param.grad is not None, param_name
        assert torch.isfinite(param.grad).all(), param_name
    for projection_list in ("projections", "transforms", "heads"):
        for module in getattr(fusion, projection_list, []):
            weights = [m.weight for m in module.modules() if isinstance(m, nn.Linear)]
            assert all(w.grad.abs().sum() > 0 for w in weights)
    for name, values in embeddings.items():
        assert values.grad is not None and values.grad.abs().sum() > 0, name


def test_gradients_finite_when_inputs_missing(fusion_name):
    fusion = build(fusion_name).train()
    embeddings = random_batch()
    embeddings["c"][~some_missing()["c"]] = float("nan")
    out = fusion(embeddings, some_missing())
    out.sum().backward()
    for param_name, param in fusion.named_parameters():
        if param.grad is not None:
            assert torch.isfinite(param.grad).all(), param_name


def test_concat_large_scale_input_does_not_dominate():
    fusion = build("concat", dropout=0.0).eval()
    embeddings = random_batch()
    embeddings["a_image"] = embeddings["a_image"] * 1000.0
    reference = fusion(embeddings, all_present())
    changed = dict(embeddings)
    changed["b.text"] = torch.randn_like(embeddings["b.text"])
    out = fusion(changed, all_present())
    # B's change moves the output about as much as changing the huge input A does.
    moved_by_b = (out - reference).abs().mean()
    changed_a = dict(embeddings)
    changed_a["a_image"] = torch.randn_like(embeddings["a_image"]) * 1000.0
    moved_by_a = (fusion(changed_a, all_present()) - reference).abs().mean()
    assert moved_by_b > 1e-3
    assert moved_by_b > 0.1 * moved_by_a


def test_missing_mask_key_means_present(fusion_name):
    fusion = build(fusion_name).eval()
    embeddings = random_batch()
    masks = all_present()
    del masks["c"]
    torch.testing.assert_close(fusion(embeddings, masks), fusion(embeddings, all_present()))


def test_rejects_bad_arguments():
    with pytest.raises(ValueError):
        ConcatFusion({}, 2)
    with pytest.raises(ValueError):
        AttentionFusion({"a": 4}, 2, d_model=30, n_heads=4)
    with pytest.raises(KeyError):
        ConcatFusion({"a": 4, "b": 4}, 2)({"a": torch.zeros(2, 4)}, {"a": torch.ones(2, dtype=torch.bool)})


FIXED_PARAMS = {
    "concat": {"proj_dim": 32, "hidden_dim": 64, "n_layers": 2, "dropout": 0.05},
    "compare": {"proj_dim": 32, "hidden_dim": 64, "n_layers": 2, "dropout": 0.05},
    "attention": {"d_model": 32, "n_heads": 2, "n_layers": 2, "ff_multiplier": 4, "dropout": 0.05},
    "gated": {"hidden_dim": 64, "dropout": 0.05},
    "late": {"hidden_dim": 32, "dropout": 0.05},
}


def test_search_space_with_fixed_trial(fusion_name):
    factory, search_space = FUSIONS[fusion_name]
    prefix = f"fusion.{fusion_name}."
    trial = optuna.trial.FixedTrial({prefix + key: value for key, value in FIXED_PARAMS[fusion_name].items()})
    params = search_space(trial, prefix)
    assert params == FIXED_PARAMS[fusion_name]
    assert set(params) <= set(factory.defaults)
    fusion = factory(dict(INPUT_DIMS), N_OUTPUTS, **params).eval()
    out = fusion(random_batch(), some_missing())
    assert out.shape == (BATCH, fusion.output_dim) and torch.isfinite(out).all()


def test_search_space_with_real_study(fusion_name):
    factory, search_space = FUSIONS[fusion_name]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(3):
        trial = study.ask()
        params = search_space(trial, "f.")
        assert all(name.startswith("f.") for name in trial.params)
        fusion = factory(dict(INPUT_DIMS), N_OUTPUTS, **params)
        assert fusion(random_batch(), all_present()).shape[1] == fusion.output_dim
        study.tell(trial, 0.0)


def test_registration_hook():
    registered = {}

    def register(name, factory, **kwargs):
        registered[name] = (factory, kwargs)

    automm_register_fusions(register)
    assert set(registered) == set(FUSIONS) | {"sum", "neighbors"}
    for name, manual in (("sum", SumFusion), ("neighbors", NeighborsFusion)):
        factory, kwargs = registered.pop(name)
        assert factory is manual and kwargs["tags"] == ("manual",) and kwargs["search_space"] is None
    for name, (factory, kwargs) in registered.items():
        assert factory is FUSIONS[name][0]
        assert kwargs["defaults"] == factory.defaults
        assert kwargs["search_space"] is FUSIONS[name][1]
        assert kwargs["description"]


SMALL_PARAMS = {
    "concat": {"proj_dim": 16, "hidden_dim": 32},
    "compare": {"proj_dim": 16, "hidden_dim": 32},
    "attention": {"d_model": 16, "n_heads": 2},
    "gated": {"hidden_dim": 16},
    "late": {"hidden_dim": 16},
}


def label_carrying_inputs(labels: torch.Tensor, direction: torch.Tensor, generator: torch.Generator):
    """A: large-scale noise; B: noisy ``direction`` times the label's sign."""
    return {
        "a": torch.randn(len(labels), 16, generator=generator) * 50.0,
        "b": torch.randn(len(labels), 8, generator=generator) * 0.5 + (labels.float() * 2 - 1)[:, None] * direction,
    }


def test_learns_from_the_informative_input(fusion_name):
    """Only input B carries the label; A is noise (and sometimes missing)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: threading only adds overhead
    try:
        torch.manual_seed(0)
        generator = torch.Generator().manual_seed(0)
        n, n_classes = 128, 2
        direction = torch.randn(8, generator=generator)
        labels = torch.randint(0, n_classes, (n,), generator=generator)
        embeddings = label_carrying_inputs(labels, direction, generator)
        masks = {"a": torch.rand(n, generator=generator) > 0.2, "b": torch.ones(n, dtype=torch.bool)}
        factory, _ = FUSIONS[fusion_name]
        fusion = factory({"a": 16, "b": 8}, n_classes, **SMALL_PARAMS[fusion_name])
        head = nn.Identity() if fusion.produces_outputs else nn.Linear(fusion.output_dim, n_classes)
        optimizer = torch.optim.Adam(list(fusion.parameters()) + list(head.parameters()), lr=1e-2)
        for _ in range(40):
            loss = nn.functional.cross_entropy(head(fusion(embeddings, masks)), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        fusion.eval()
        with torch.no_grad():  # fresh samples from the same distribution
            test_labels = torch.randint(0, n_classes, (n,), generator=generator)
            predictions = head(fusion(label_carrying_inputs(test_labels, direction, generator), masks)).argmax(dim=1)
    finally:
        torch.set_num_threads(threads)
    accuracy = (predictions == test_labels).float().mean().item()
    assert accuracy >= 0.9, accuracy


def test_sum_fusion_adds_present_inputs_and_a_bias():
    fusion = SumFusion({"b": 3, "a": 3}, 3)
    with torch.no_grad():
        fusion.bias.copy_(torch.tensor([1.0, 0.0, -1.0]))
    a, b = torch.ones(2, 3), torch.full((2, 3), float("nan"))
    out = fusion({"a": a, "b": b}, {"a": torch.tensor([True, True]), "b": torch.tensor([False, False])})
    assert fusion.produces_outputs and fusion.output_dim == 3
    torch.testing.assert_close(out, torch.tensor([[2.0, 1.0, 0.0]] * 2))  # the missing input (NaN) never counts
    with pytest.raises(ValueError, match="as wide as the outputs"):
        SumFusion({"a": 4}, 3)


def test_naming_the_sum_fusion_with_encoders_not_in_their_linear_form_says_what_it_needs():
    """It failed with a PluginError telling the fusion's author to accept any inputs."""
    from automm import AutoMM
    from automm.exceptions import InputError

    texts, labels = [f"item {i % 5} word{i % 3}" for i in range(30)], [f"c{i % 3}" for i in range(30)]
    with pytest.raises(InputError, match=r"fusion: 'sum' adds its inputs, so each must be as wide as the outputs "
                                         r"\(3\), got \{'text_0': \d+\}: .* use another fusion, e.g. 'concat'"):
        AutoMM(fusion="sum", max_epochs=1, num_workers=0, column_types={"x0": "text"}).fit(texts, labels)


@pytest.mark.parametrize("fusion_name, key, value, least", [
    ("concat", "proj_dim", 0, 1), ("concat", "hidden_dim", 0, 1), ("concat", "hidden_dim", 2.5, 1),
    ("concat", "n_layers", 1.5, 0), ("concat", "n_layers", -1, 0), ("concat", "n_layers", "2", 0),
    ("attention", "n_heads", 0, 1), ("attention", "d_model", 0, 1), ("attention", "ff_multiplier", 0, 1),
    ("attention", "n_layers", 1.5, 1), ("gated", "hidden_dim", 0, 1), ("late", "hidden_dim", 0, 1),
])
def test_a_size_that_is_no_whole_number_of_at_least_one_is_refused_naming_it(fusion_name, key, value, least):
    """Unchecked, proj_dim=0 (and late's hidden_dim=0) built a fusion whose output ignores its
    inputs (fit trained a constant model: every row the majority class), hidden_dim=0 failed as
    a PluginError telling the built-in's author to set output_dim, n_heads=0 as a
    ZeroDivisionError, and 2.5 or '2' in torch's words."""
    from automm.exceptions import InputError

    with pytest.raises(InputError, match=rf"^{key} must be a whole number >= {least}, got {value!r}$"):
        build(fusion_name, **{key: value})


def test_a_fusion_size_the_model_cannot_use_is_refused_by_fit_before_any_work():
    from automm import AutoMM
    from automm.exceptions import InputError

    texts, labels = [f"item {i % 5} word{i % 3}" for i in range(30)], [f"c{i % 3}" for i in range(30)]
    with pytest.raises(InputError, match=r"^fusion\['proj_dim'\]: fusion 'concat' refuses proj_dim=0 \(InputError: "
                                         r"proj_dim must be a whole number >= 1, got 0\)$"):
        AutoMM(fusion={"name": "concat", "proj_dim": 0}, max_epochs=1, num_workers=0,
               column_types={"x0": "text"}).fit(texts, labels)
    with pytest.raises(InputError, match=r"^search_space\['fusion'\]\['attention'\]\['n_heads'\]: fusion 'attention' "
                                         r"refuses n_heads=0 \(InputError: n_heads must be a whole number >= 1"):
        AutoMM(search_space={"fusion": {"attention": {"n_heads": [0, 2]}}}, n_trials=2, max_epochs=1, num_workers=0,
               column_types={"x0": "text"}).fit(texts, labels)


@pytest.mark.parametrize("fusion_name", ["concat", "attention", "gated", "late"])
def test_a_missing_input_is_zero_after_its_trained_layer_norm(fusion_name):
    """Each input's LayerNorm output is zeroed again where the input is missing: a trained norm's
    bias (zero only at initialisation, where the other fusion tests look) otherwise stood in for a
    missing input, and the gated fusion's gate read it."""
    from automm.components.fusions import AttentionFusion, ConcatFusion, GatedFusion, LateFusion

    factory = {"concat": ConcatFusion, "attention": AttentionFusion, "gated": GatedFusion, "late": LateFusion}
    torch.manual_seed(0)
    dims = {"image": 6, "text": 4, "table": 3}  # (two present: the gate weighs them)
    fusion = factory[fusion_name](dims, 3).eval()
    generator = torch.Generator().manual_seed(1)
    embeddings = {name: torch.randn(5, dim, generator=generator) for name, dim in dims.items()}
    masks = {"image": torch.tensor([True, False, True, False, True]), "text": torch.ones(5, dtype=torch.bool),
             "table": torch.ones(5, dtype=torch.bool)}
    with torch.no_grad():
        for norm in fusion.input_norms:  # as trained: biases away from zero
            norm.bias.copy_(torch.randn(norm.bias.shape, generator=generator))
        reference = fusion(embeddings, masks)
        fusion.input_norms[fusion.input_names.index("image")].bias.mul_(-3.0)
        changed = fusion(embeddings, masks)
    missing = ~masks["image"]
    torch.testing.assert_close(changed[missing], reference[missing])
    assert not torch.allclose(changed[~missing], reference[~missing])  # where present, the bias matters


@pytest.mark.parametrize("fusion_name", ["concat", "attention", "gated", "late"])
def test_the_dropout_hyperparameter_is_the_one_applied(fusion_name):
    """``dropout`` reaches the fusion's dropout layers: 0 trains deterministically, 0.3 does not (a
    fixed rate in place of the argument left the search's dropout doing nothing)."""
    embeddings, masks = random_batch(), all_present()
    no_dropout = build(fusion_name, dropout=0.0).train()
    torch.manual_seed(1)
    first = no_dropout(embeddings, masks)
    torch.manual_seed(2)
    torch.testing.assert_close(no_dropout(embeddings, masks), first)
    with_dropout = build(fusion_name, dropout=0.3).train()
    torch.manual_seed(1)
    first = with_dropout(embeddings, masks)
    torch.manual_seed(2)
    assert not torch.allclose(with_dropout(embeddings, masks), first)


def test_concat_blocks_of_a_missing_input_are_zero_and_flags_say_present():
    """concat with no layers returns its concatenation: per input (in sorted order) the projection,
    zeroed where the input is missing (the projection's bias would otherwise stand in for it), then
    the presence flag."""
    fusion = build("concat", n_layers=0, proj_dim=4).eval()
    with torch.no_grad():
        for projection in fusion.projections:  # as trained: biases away from zero
            projection.bias.add_(1.0)
        masks = some_missing()
        out = fusion(random_batch(), masks)
    for index, name in enumerate(sorted(INPUT_DIMS)):
        block, flag = out[:, index * 5:index * 5 + 4], out[:, index * 5 + 4]
        torch.testing.assert_close(flag, masks[name].float())
        assert (block[~masks[name]] == 0).all(), name
        assert (block[masks[name]] != 0).any(), name


@pytest.mark.parametrize("fusion_name", ["attention", "gated", "late"])
def test_a_sample_with_one_input_fuses_it_alone(fusion_name):
    """A missing input is left out, not read as an input of zeros: where only ``a`` is present,
    ``late`` returns a's head, ``gated`` a's transform (the softmax over the present inputs gives it
    weight 1), and ``attention`` what the fusion of ``a`` alone with the same weights returns (the
    missing input's token masked out of attention, not attended as a zero token)."""
    dims = {"a": 6, "b": 4}
    factory, _ = FUSIONS[fusion_name]
    torch.manual_seed(0)
    fusion = factory(dims, N_OUTPUTS).eval()
    generator = torch.Generator().manual_seed(3)
    embeddings = {name: torch.randn(4, dim, generator=generator) for name, dim in dims.items()}
    masks = {"a": torch.ones(4, dtype=torch.bool), "b": torch.tensor([False, False, True, True])}
    with torch.no_grad():
        out = fusion(embeddings, masks)
        normalised = fusion.input_norms[0](embeddings["a"])
        if fusion_name == "late":
            expected = fusion.heads[0](normalised)
        elif fusion_name == "gated":
            expected = torch.tanh(fusion.transforms[0](normalised))
        else:
            alone = AttentionFusion({"a": 6}, N_OUTPUTS).eval()
            state = {key: value for key, value in fusion.state_dict().items()
                     if not key.startswith(("input_norms.1.", "projections.1."))}
            state["input_embeddings"] = state["input_embeddings"][:1]
            alone.load_state_dict(state)
            expected = alone({"a": embeddings["a"]}, {"a": masks["a"]})
    torch.testing.assert_close(out[:2], expected[:2], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(out[2:], expected[2:], atol=1e-3)  # where b is present, it counts


def test_attention_builds_the_layers_and_widths_it_is_given():
    """n_layers and ff_multiplier reach the transformer (a search draw of 2 layers ran 1)."""
    fusion = build("attention", d_model=16, n_heads=2, n_layers=2, ff_multiplier=4)
    assert len(fusion.encoder.layers) == 2
    assert all(layer.linear1.out_features == 64 for layer in fusion.encoder.layers)
    assert len(build("attention", d_model=16, n_heads=2, n_layers=1).encoder.layers) == 1


# -- compare: two inputs of one modality -------------------------------------------------

PAIR_DIMS = {"text_0": 8, "text_1": 8, "text_2": 6, "image_0": 8, "tabular": 3}


def test_compare_pairs_the_inputs_of_one_modality_whose_widths_agree():
    assert compared_pairs(PAIR_DIMS) == [("text_0", "text_1")]  # not text_2 (other width), nor image_0 (other modality)
    three = {"image_0": 4, "image_1": 4, "image_2": 4}
    assert compared_pairs(three) == [("image_0", "image_1"), ("image_0", "image_2"), ("image_1", "image_2")]
    assert compared_pairs(INPUT_DIMS) == [] and compared_pairs({"tabular": 3, "audio_0": 3}) == []


def test_compare_passes_the_conformance_kit_on_inputs_with_pairs():
    from automm.testing import check_fusion

    report = check_fusion("compare", PAIR_DIMS, proj_dim=8, hidden_dim=16)
    assert report.output_dim == 16


def test_compare_adds_a_symmetric_comparison_of_each_pair_zero_where_either_is_missing():
    """concat's parts, then per pair a projection of (|a - b|, a * b) and a "both present" flag:
    the same whichever column holds which item."""
    torch.manual_seed(0)
    fusion = CompareFusion(PAIR_DIMS, 2, n_layers=0, proj_dim=4).eval()
    concat = ConcatFusion(PAIR_DIMS, 2, n_layers=0, proj_dim=4)
    assert fusion.output_dim == concat.output_dim + 5
    generator = torch.Generator().manual_seed(1)
    embeddings = {name: torch.randn(6, dim, generator=generator) for name, dim in PAIR_DIMS.items()}
    masks = {name: torch.ones(6, dtype=torch.bool) for name in PAIR_DIMS}
    masks["text_1"][0] = False
    with torch.no_grad():
        for projection in fusion.pair_projections:  # as trained: a bias away from zero
            projection.bias.add_(1.0)
        pair = fusion(embeddings, masks)[:, -5:]
        swapped = fusion({**embeddings, "text_0": embeddings["text_1"], "text_1": embeddings["text_0"]},
                         {**masks, "text_0": masks["text_1"], "text_1": masks["text_0"]})[:, -5:]
    torch.testing.assert_close(swapped, pair)
    assert (pair[0] == 0).all() and (pair[1:, :4] != 0).any(dim=1).all()
    torch.testing.assert_close(pair[:, 4], torch.tensor([0.0, 1, 1, 1, 1, 1]))


def test_compare_learns_whether_two_items_match_where_concat_cannot():
    """Two titles' embeddings, "the same kind?" (each item alone says nothing): concat with a
    linear head added up each input's evidence and stayed at chance; compare's |a - b| and
    a * b tell."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generator = torch.Generator().manual_seed(0)
        centres = torch.randn(6, 8, generator=generator) * 2

        def pairs(n):
            same = torch.rand(n, generator=generator) < 0.5
            a = torch.randint(0, 6, (n,), generator=generator)
            b = torch.where(same, a, (a + torch.randint(1, 6, (n,), generator=generator)) % 6)
            noise = lambda: torch.randn(n, 8, generator=generator) * 0.3  # noqa: E731
            return {"text_0": centres[a] + noise(), "text_1": centres[b] + noise()}, same.long()

        masks = {name: torch.ones(256, dtype=torch.bool) for name in ("text_0", "text_1")}
        train, labels = pairs(256)
        test, test_labels = pairs(256)
        accuracy = {}
        for factory in (ConcatFusion, CompareFusion):
            torch.manual_seed(0)
            fusion = factory({"text_0": 8, "text_1": 8}, 2, n_layers=0, proj_dim=16)
            head = nn.Linear(fusion.output_dim, 2)
            optimizer = torch.optim.Adam([*fusion.parameters(), *head.parameters()], lr=1e-2)
            for _ in range(150):
                loss = nn.functional.cross_entropy(head(fusion(train, masks)), labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            with torch.no_grad():
                predicted = head(fusion.eval()(test, masks)).argmax(1)
            accuracy[factory.__name__] = (predicted == test_labels).float().mean().item()
    finally:
        torch.set_num_threads(threads)
    assert accuracy["CompareFusion"] >= 0.9 and accuracy["ConcatFusion"] <= 0.7, accuracy
