"""AutoMM follows scikit-learn's estimator rules (checked with scikit-learn's own checks)."""

import numpy as np
import pytest
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.utils import estimator_checks as checks
from sklearn.utils.estimator_checks import parametrize_with_checks

from automm import AutoMM, AutoMMClassifier, AutoMMRegressor

from helpers import tiny

ESTIMATORS = [AutoMM, AutoMMClassifier, AutoMMRegressor]
CHECKS = [
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_estimator_tags_renamed",
    "check_valid_tag_types",
    "check_mixin_order",
]


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("check", CHECKS)
def test_scikit_learn_api_checks(cls, check):
    getattr(checks, check)(cls.__name__, cls())


def _expected_failures(estimator) -> dict[str, str]:
    """The checks of scikit-learn's suite automm fails by design, each with why."""
    failures = {
        "check_fit1d": "a 1-D X is one input column (a list of texts or image paths), not an error",
        "check_sample_weight_equivalence_on_dense_data": "a weight of 2 cannot equal the row repeated exactly for a "
        "network trained by minibatches with a holdout split (tests/test_sample_weight.py checks where it is exact)",
        "check_sample_weight_equivalence_on_sparse_data": "as on dense data",
    }
    # float32 results differ in their 7th digit between batch sizes (transform's embeddings: 1.7e-7 on 6.4e-4; a
    # regressor's predictions: 1.8e-7 on 0.57 where MKL's threads split the rows otherwise, on a busy machine), past
    # the check's 1e-7: test_predictions_do_not_depend_on_the_rows_predicted_with_them checks at float32's precision
    failures["check_methods_subset_invariance"] = "float32 results differ in their 7th digit between batch sizes"
    return failures


@pytest.mark.parametrize("cls", [AutoMMClassifier, AutoMMRegressor], ids=lambda c: c.__name__)
def test_predictions_do_not_depend_on_the_rows_predicted_with_them(cls):
    rng = np.random.RandomState(0)
    X = rng.uniform(size=(40, 3))
    y = (X[:, 0] > 0.5).astype(int) if cls is AutoMMClassifier else X @ [1.0, 2.0, -1.0]
    model = cls(max_epochs=2, num_workers=0, random_state=0).fit(X, y)
    methods = ["predict", "transform"] + (["predict_proba", "predict_log_proba"] if cls is AutoMMClassifier else [])
    for method in methods:
        whole = getattr(model, method)(X)
        parts = np.concatenate([getattr(model, method)(X[i:i + 7]) for i in range(0, len(X), 7)])
        np.testing.assert_allclose(parts, whole, rtol=1e-5, atol=1e-6, err_msg=method)


@parametrize_with_checks([AutoMMClassifier(max_epochs=2, num_workers=0, random_state=0),
                          AutoMMRegressor(max_epochs=2, num_workers=0, random_state=0)],
                         expected_failed_checks=_expected_failures)
def test_scikit_learn_estimator_checks(estimator, check, builtin_only):
    check(estimator)


@pytest.mark.parametrize("method", ["predict_proba", "predict_log_proba"])
def test_a_regressor_has_no_predict_proba(method):
    assert not hasattr(AutoMMRegressor(), method)
    assert hasattr(AutoMMClassifier(), method) and hasattr(AutoMM(), method)
    assert not hasattr(AutoMM(problem_type="regression"), method)  # as after its fit
    fitted = AutoMM(**tiny(max_epochs=1, encoders={"text": "hashed_ngram"})).fit(
        [f"item {i}" for i in range(40)], np.linspace(0.0, 1.0, 40))
    assert fitted.problem_type_ == "regression" and not hasattr(fitted, method)


def test_predict_proba_of_class_codes_read_as_amounts_says_why_it_is_missing():
    """``cross_val_predict(AutoMM(), X, y, method="predict_proba")`` encodes the labels as 0..k-1; with many
    classes fit reads such codes as amounts, and the user met scikit-learn's bare "This 'AutoMM' has no
    attribute 'predict_proba'". The error says why and what to use; hasattr stays False."""
    from sklearn.model_selection import cross_val_predict

    texts = [f"item {i}" for i in range(60)]
    labels = np.array([f"class {i}" for i in range(30)] * 2)
    model = AutoMM(**tiny(max_epochs=1, encoders={"text": "hashed_ngram"}))
    with pytest.warns(UserWarning), pytest.raises(AttributeError) as raised:
        cross_val_predict(model, texts, labels, method="predict_proba", cv=2)
    message = str(raised.value)
    assert "'predict_proba'" in message and "problem_type_ == 'regression'" in message and "amounts" in message
    assert "AutoMMClassifier" in message and "problem_type='multiclass'" in message
    with pytest.warns(UserWarning, match="read as a regression target"):
        fitted = AutoMM(**tiny(max_epochs=1, encoders={"text": "hashed_ngram"})).fit(texts, np.arange(60) % 40)
    assert fitted.problem_type_ == "regression" and not hasattr(fitted, "predict_log_proba")
    with pytest.raises(AttributeError, match=r"predict_log_proba'; problem_type_ == 'regression': fit read the labels"):
        fitted.predict_log_proba(texts)
    with pytest.raises(AttributeError, match="AutoMMRegressor fits a regression.*use AutoMMClassifier"):
        AutoMMRegressor().predict_proba(texts)
    with pytest.raises(AttributeError, match="problem_type='regression': a regression has no class probabilities"):
        AutoMM(problem_type="regression").predict_proba(texts)
    assert hasattr(AutoMM(), "predict_proba") and hasattr(AutoMMClassifier(), "predict_log_proba")


def test_permutation_importance_names_an_unreadable_image_and_labels_of_no_class_once(tmp_path):
    """One ``permutation_importance(model, X, y, n_repeats=3)`` printed "y: 2 of 200 labels are no class of
    the model" 16 times and an unreadable image's warning 12 times: scikit-learn empties Python's memory of
    shown warnings in each scoring (its ``catch_warnings``), so automm's said them once per call."""
    import warnings
    from collections import Counter

    import pandas as pd
    from PIL import Image
    from sklearn.inspection import permutation_importance

    labels = ["dark", "light"] * 20
    for i, label in enumerate(labels):
        Image.fromarray(np.full((8, 8, 3), 30 if label == "dark" else 220, np.uint8)).save(tmp_path / f"{i}.png")
    X = pd.DataFrame({"image": [str(tmp_path / f"{i}.png") for i in range(40)],
                      "text": [f"{label} photo {i}" for i, label in enumerate(labels)]})
    model = AutoMM(**tiny(max_epochs=1)).fit(X, labels)
    X.loc[3, "image"] = str(tmp_path / "gone.png")
    y = ["grey", "grey", *labels[2:]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        permutation_importance(model, X, y, n_repeats=3, random_state=0)
    said = Counter(str(w.message) for w in caught)
    assert [n for message, n in said.items() if "2 of 40 labels are no class of the model ('grey')" in message] == [1]
    assert [n for message, n in said.items() if "cannot be read and count as missing: row 3 (" in message] == [1]
    X.loc[5, "image"] = str(tmp_path / "also_gone.png")  # another finding is said
    with pytest.warns(UserWarning, match=r"2 of 40 images cannot be read and count as missing: row 3 .*row 5"):
        model.predict(X)


def test_warnings_made_errors_are_raised_by_every_call_not_the_first_only(tmp_path):
    """A service that turns automm's warnings into errors, to refuse requests with an unreadable image:
    the once-per-model warnings counted the first request's, raised as an error, as said, so the next
    request with the same file predicted with the image missing, with no error."""
    import warnings

    import pandas as pd
    from PIL import Image

    from automm import AutoMMWarning

    labels = ["dark", "light"] * 20
    for i, label in enumerate(labels):
        Image.fromarray(np.full((8, 8, 3), 30 if label == "dark" else 220, np.uint8)).save(tmp_path / f"{i}.png")
    X = pd.DataFrame({"image": [str(tmp_path / f"{i}.png") for i in range(40)]})
    model = AutoMM(**tiny(max_epochs=1)).fit(X, labels)
    (tmp_path / "upload.png").write_bytes(b"not an image")
    request = pd.DataFrame({"image": [str(tmp_path / "upload.png"), *X.image[:30]]})
    y = ["grey", *labels[:30]]
    with warnings.catch_warnings():
        warnings.simplefilter("error", AutoMMWarning)
        for _ in range(3):
            with pytest.raises(AutoMMWarning, match="1 of 31 images cannot be read"):
                model.predict(request)
        for _ in range(2):  # a row without its one input: said once per model, as an error each time
            with pytest.raises(AutoMMWarning, match="1 of 31 rows have no input at all"):
                model.predict(request.mask(request.image.str.endswith("upload.png")))
        for _ in range(2):
            with pytest.raises(AutoMMWarning, match="1 of 31 labels are no class of the model"):
                model.score(X.head(31), y)


def test_predict_log_proba_is_the_log_of_predict_proba_and_finite_where_it_rounds_to_0(monkeypatch):
    """scikit-learn's classifiers have ``predict_log_proba`` (log-loss by hand, naive-Bayes-style
    stacking); automm had none. A confident model's tiny probabilities stay finite logarithms."""
    texts = [f"{word} item {i}" for i in range(30) for word in ("red", "blue")]
    labels = ["r", "b"] * 30
    model = AutoMM(**tiny(max_epochs=3, encoders={"text": "hashed_ngram"})).fit(texts, labels)
    proba, log_proba = model.predict_proba(texts), model.predict_log_proba(texts)
    assert log_proba.shape == proba.shape and log_proba.dtype == np.float64
    np.testing.assert_allclose(np.exp(log_proba), proba, rtol=1e-12, atol=1e-15)
    assert np.isfinite(log_proba).all()
    with pytest.raises(TypeError, match="predict_log_proba"):
        model.predict_log_proba(texts, batch=2)
    # a probability that rounds to 0 (this model is not that sure: its outputs made so; np.log of it was -inf)
    monkeypatch.setattr(type(model), "_raw_outputs", lambda self, X, n_labels=None: np.array([[0.0, 800.0]], np.float32))
    assert model.predict_proba(texts[:1])[0, 0] == 0.0
    np.testing.assert_allclose(model.predict_log_proba(texts[:1]), [[-800.0, 0.0]])


def test_init_only_stores_parameters_and_clone_round_trips():
    params = tiny(time_limit=30, verbose=0)
    est = AutoMM(**params)
    assert est.get_params()["time_limit"] == 30
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    est.set_params(max_epochs=7)
    assert est.max_epochs == 7


def test_constructor_does_not_validate():
    est = AutoMM(max_epochs=-3, fusion="no-such-fusion")  # validation belongs to fit
    assert est.max_epochs == -3


def test_classifier_and_regressor_are_recognised():
    assert is_classifier(AutoMMClassifier())
    assert is_regressor(AutoMMRegressor())
    assert not is_classifier(AutoMM()) and not is_regressor(AutoMM())
    # an AutoMM told its problem is one to scikit-learn too (stratified folds for a classifier)
    assert is_classifier(AutoMM(problem_type="multiclass")) and is_classifier(AutoMM(problem_type="binary"))
    assert is_regressor(AutoMM(problem_type="regression"))


def test_a_fitted_plain_automm_is_the_classifier_or_regressor_it_became():
    """``AutoMM()`` is neither until fit has seen the labels, then what they made it: scikit-learn read a
    fitted binary one's predict_proba as two classes' scores, so CalibratedClassifierCV calibrated the
    first class's probability as the second's (accuracy 0.14 where the model had 0.85; with cv=3 an
    IndexError), and the roc_auc scorer refused its (n, 2) scores."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator
    from sklearn.metrics import get_scorer

    texts = [f"{word} item {i}" for i in range(30) for word in ("red", "blue")]
    labels = ["r", "b"] * 30
    model = AutoMM(**tiny(max_epochs=3, encoders={"text": "hashed_ngram"})).fit(texts, labels)
    assert model.problem_type_ == "binary" and is_classifier(model) and not is_classifier(clone(model))
    calibrated = CalibratedClassifierCV(FrozenEstimator(model)).fit(texts, labels)
    assert (calibrated.predict(texts) == model.predict(texts)).mean() > 0.9
    np.testing.assert_allclose(get_scorer("roc_auc")(model, texts, labels), 1.0)
    amounts = AutoMM(**tiny(max_epochs=1, encoders={"text": "hashed_ngram"})).fit(texts, np.linspace(0.0, 1.0, 60))
    assert amounts.problem_type_ == "regression" and is_regressor(amounts) and not is_classifier(amounts)


def test_cross_validating_a_fitted_plain_automm_does_not_warn_of_unstratified_folds():
    """A fitted ``AutoMM()`` is a classifier to ``cross_val_score``, which stratifies its folds by
    it; each fold's clone warned that the folds were split in order, unstratified: false."""
    import warnings

    from sklearn.model_selection import cross_val_score

    texts = [f"{word} item {i}" for word in ("red", "blue") for i in range(20)]
    labels = ["r"] * 20 + ["b"] * 20  # (in order: unstratified folds would hold one class each)
    model = AutoMM(**tiny(max_epochs=1, encoders={"text": "hashed_ngram"})).fit(texts, labels)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = cross_val_score(model, texts, labels, cv=2)
    assert len(scores) == 2 and not [w for w in caught if "neither a classifier" in str(w.message)]
    with pytest.warns(UserWarning, match=r"neither a classifier nor a regressor .* unstratified"):  # unfitted: so
        cross_val_score(clone(model), texts[::2] + texts[1::2], labels[::2] + labels[1::2], cv=2)


def test_cross_validating_a_fitted_plain_automm_in_joblib_workers_does_not_warn_of_unstratified_folds():
    """With n_jobs=2 each fold's fit runs in a joblib worker, whose stack holds no cross_val_score
    (nor its estimator): every fold warned that its folds were split in order, unstratified, though
    the fitted model had them stratified. (The threading backend's workers stand for loky's
    processes here: their stacks hold the same frames.)"""
    import warnings

    from joblib import parallel_backend
    from sklearn.model_selection import cross_val_score

    texts = [f"{word} item {i}" for word in ("red", "blue") for i in range(20)]
    labels = ["r"] * 20 + ["b"] * 20  # (in order: unstratified folds would hold one class each)
    model = AutoMM(**tiny(max_epochs=1, encoders={"text": "hashed_ngram"})).fit(texts, labels)
    with warnings.catch_warnings(record=True) as caught, parallel_backend("threading", n_jobs=2):
        warnings.simplefilter("always")
        scores = cross_val_score(model, texts, labels, cv=2, n_jobs=2)
    assert len(scores) == 2 and not [w for w in caught if "neither a classifier" in str(w.message)]
    with warnings.catch_warnings(record=True) as caught, parallel_backend("threading", n_jobs=2):
        warnings.simplefilter("always")  # unfitted: its folds are unstratified, and each worker says so
        cross_val_score(clone(model), texts[::2] + texts[1::2], labels[::2] + labels[1::2], cv=2, n_jobs=2)
    assert len([w for w in caught if "neither a classifier" in str(w.message)]) == 2
    assert not hasattr(clone(clone(model)), "_cloned_from")  # a clone of the unfitted clone: its folds its own


def test_a_fitted_problem_type_auto_estimator_is_the_kind_it_learned(emoji_split, tmp_path):
    """scikit-learn's tools for classifiers refused a fitted ``AutoMM()``, the quickstart's model:
    ``partial_dependence`` ("'estimator' must be a fitted regressor or classifier"),
    ``ConfusionMatrixDisplay.from_estimator`` ("only supports classifiers"); so did they a loaded one."""
    from sklearn.inspection import partial_dependence

    train, test = emoji_split
    X = train[["image", "name"]].head(60)
    model = AutoMM(**tiny(max_epochs=1)).fit(X, train["category"].head(60))
    assert is_classifier(model) and not is_regressor(model)
    assert is_classifier(AutoMM.load(model.save(tmp_path / "model")))
    assert not is_classifier(clone(model))  # unfitted again: model selection's folds as before
    rows = test[["image", "name"]].head(4)
    result = partial_dependence(model, rows, features=["name"], categorical_features=["name"], kind="average")
    assert result["average"].shape == (len(model.classes_), 4)
    regressor = AutoMM(**tiny(max_epochs=1)).fit(X, np.linspace(0.0, 1.0, 60))
    assert is_regressor(regressor) and not is_classifier(regressor) and not hasattr(regressor, "predict_proba")


def test_a_regressor_has_no_classifier_tags_and_every_automm_requires_y():
    """AutoMM's tags were set inside the mixins' own, before those named the type: AutoMMRegressor
    carried classifier tags (as an AutoMM of problem_type='auto' does for its predict_proba)."""
    from sklearn.utils import get_tags

    for regressor in (AutoMMRegressor(), AutoMM(problem_type="regression"), AutoMMRegressor(problem_type="binary")):
        tags = get_tags(regressor)
        assert tags.estimator_type == "regressor" and tags.classifier_tags is None and tags.regressor_tags is not None
    for classifier in (AutoMMClassifier(), AutoMM(problem_type="multiclass"), AutoMMClassifier(problem_type="regression")):
        tags = get_tags(classifier)
        assert tags.estimator_type == "classifier" and tags.regressor_tags is None and tags.classifier_tags is not None
    for estimator in (AutoMM(), AutoMM(problem_type="regression"), AutoMM(problem_type="binary")):
        assert get_tags(estimator).target_tags.required  # fit refuses a missing y, as a classifier's does


def test_several_amount_columns_as_y_name_the_regressors_wrapper():
    import pandas as pd

    from automm import InputError

    texts, targets = [f"item {i}" for i in range(20)], np.linspace(0.0, 1.0, 20)
    two = pd.DataFrame({"price": targets, "weight": targets * 2})
    for y in (two, two.to_numpy()):
        with pytest.raises(InputError, match=r"several targets, one model each: "
                                             r"sklearn\.multioutput\.MultiOutputRegressor\(AutoMMRegressor\(\)\)\)$"):
            AutoMMRegressor(**tiny(max_epochs=1)).fit(texts, y)
    with pytest.raises(InputError, match=r"MultiOutputClassifier\(AutoMMClassifier\(\)\), or for amounts "
                                         r"MultiOutputRegressor\(AutoMMRegressor\(\)\)"):
        AutoMM(**tiny(max_epochs=1)).fit(texts, two)


def test_validation_labels_that_scikit_learn_left_unencoded_are_told_to_be_encoded():
    """cross_val_predict(method='predict_proba') fits on y encoded as 0, 1, ... but passes y_val on as
    given: the error told to weigh the rows with sample_weight (class_weight's fix), which y_val has
    nothing to do with."""
    from sklearn.model_selection import cross_val_predict

    from automm import InputError

    texts = [f"{word} item {i}" for i in range(10) for word in ("red", "blue")]
    labels = np.array(["r", "b"] * 10)
    with pytest.raises(InputError, match=r"^y_val: labels \['b', 'r'\] do not occur in y; y holds the classes \[0, 1\]; "
                                         r"scikit-learn's cross_val_predict\(method='predict_proba'\).* fit on the labels "
                                         r"encoded as 0, 1, \.\.\.: give y_val encoded as they encode y, "
                                         r"LabelEncoder\(\)\.fit\(y\)\.transform\(y_val\)$"):
        cross_val_predict(AutoMMClassifier(**tiny(max_epochs=1, encoders={"text": "hashed_ngram"})), texts, labels,
                          cv=2, method="predict_proba", params={"X_val": texts[:6], "y_val": labels[:6]})


def test_a_class_weight_naming_every_class_fits_a_fold_that_lacks_one(monkeypatch):
    """As scikit-learn's: a dict that names every class of the training rows may name more (a rare class
    that a cross-validation fold's training rows lack); it failed that fold (its score NaN). A dict that
    leaves a class unnamed and names a label that is none is still refused (a typo)."""
    import automm.estimator
    from automm import InputError

    class Started(Exception):
        pass

    def started(self, data, *args, **kwargs):
        raise Started(data.class_weights)

    monkeypatch.setattr(automm.estimator.AutoMM, "_fit_candidates", started)
    texts, labels = [f"title {i}" for i in range(12)], ["a", "b", "c"] * 4
    with pytest.raises(Started) as fitted:  # the fold's rows lack "rare": its weight is not used
        AutoMMClassifier(max_epochs=1, class_weight={"a": 1.0, "b": 1.0, "c": 2.0, "rare": 5.0}).fit(texts, labels)
    assert fitted.value.args[0] == pytest.approx([0.75, 0.75, 1.5])
    with pytest.raises(InputError, match=r"labels \['rare'\] are not among the classes \['a', 'b', 'c'\]$"):
        AutoMMClassifier(max_epochs=1, class_weight={"a": 1.0, "rare": 5.0}).fit(texts, labels)
    # labels scikit-learn encoded as 0, 1, ... (cross_val_predict with predict_proba): the error says so
    with pytest.raises(InputError, match=r"not among the classes \[0, 1, 2\]; scikit-learn's cross_val_predict\("
                                         r"method='predict_proba'\).* sample_weight="):
        AutoMMClassifier(max_epochs=1, class_weight={"c": 2.0}).fit(texts, [0, 1, 2] * 4)


def test_a_nested_parameter_key_in_a_pipeline_says_the_grid_key_has_the_step_name():
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    pipe = Pipeline([("prep", FunctionTransformer()), ("m", AutoMMClassifier())])
    with pytest.raises(ValueError, match=r"in a pipeline's, after the step's name: \{'<step>__encoders': \[\.\.\.\]\}"):
        pipe.set_params(m__encoders__text="gru")


def test_the_unstratified_folds_warning_holds_for_folds_given_as_a_stratified_splitter(emoji_split):
    """With cv=StratifiedKFold(...) the folds are stratified: the warning said that cross-validation
    splits the rows in order, unstratified; only a number of folds does."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    train = emoji_split[0].head(40)
    with pytest.warns(UserWarning, match=r"neither a classifier nor a regressor to scikit-learn, so a number of "
                                         r"folds \(an integer cv, or cv left at its default\) splits its rows in "
                                         r"order, unstratified"):
        cross_val_score(AutoMM(**tiny(max_epochs=1)), train[["image", "name"]], train["category"],
                        cv=StratifiedKFold(2, shuffle=True, random_state=0))


def test_the_unstratified_folds_warning_claims_no_number_of_folds():
    """cross_val_score(AutoMM(), X, y, cv=2) warned that "a number of folds (cv=5)" splits the rows
    in order: a number it did not know, which the user had not passed."""
    import warnings

    from sklearn.model_selection import cross_val_score

    texts = [f"{word} item {i}" for word in ("red", "blue") for i in range(10)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cross_val_score(AutoMM(**tiny(max_epochs=1, encoders={"text": "hashed_ngram"})), texts, ["r", "b"] * 10, cv=2)
    said = [str(w.message) for w in caught if "neither a classifier nor a regressor" in str(w.message)]
    assert said and all("cv=5" not in message and "(an integer cv, or cv left at its default)" in message
                        for message in said)


def test_model_selection_on_a_plain_automm_warns_that_its_folds_are_not_stratified(emoji_split):
    from sklearn.model_selection import cross_val_score

    train = emoji_split[0].head(40)
    with pytest.warns(UserWarning, match=r"neither a classifier nor a regressor .* use AutoMMClassifier"):
        cross_val_score(AutoMM(**tiny(max_epochs=1)), train[["image", "name"]], train["category"], cv=2)


def test_a_plain_automm_in_a_stacking_classifier_does_not_warn_of_unstratified_folds(emoji_split):
    """A StackingClassifier chooses its folds by its own type (stratified) and calls predict_proba
    itself: the warning that cross-validation splits unstratified would say something false there;
    a pipeline ending in a plain AutoMM, given to model selection, still gets it."""
    import warnings

    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import StackingClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline

    train = emoji_split[0].head(40)
    X, y = train[["image", "name"]], train["category"]
    words = make_pipeline(make_column_transformer((TfidfVectorizer(), "name")), LogisticRegression())
    stack = StackingClassifier([("automm", AutoMM(**tiny(max_epochs=1))), ("words", words)], cv=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stack.fit(X, y)
    assert not [w for w in caught if "neither a classifier nor a regressor" in str(w.message)]
    with pytest.warns(UserWarning, match=r"neither a classifier nor a regressor .* unstratified"):
        cross_val_score(make_pipeline(AutoMM(**tiny(max_epochs=1))), X, y, cv=2)


def test_a_plain_automm_in_a_grid_search_inside_a_stacking_classifier_still_warns(emoji_split):
    """The StackingClassifier higher up the stack silenced the warning, but the GridSearchCV between
    it and the AutoMM chooses the folds, by the AutoMM's type: plain KFold, unstratified."""
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import StackingClassifier
    from sklearn.model_selection import GridSearchCV

    train = emoji_split[0].head(40)
    grid = GridSearchCV(AutoMM(**tiny(max_epochs=1)), {"max_epochs": [1]}, cv=2)
    stack = StackingClassifier([("grid", grid), ("prior", DummyClassifier())], cv=2)
    with pytest.warns(UserWarning, match=r"neither a classifier nor a regressor .* unstratified"):
        stack.fit(train[["image", "name"]], train["category"])


def test_a_classifier_takes_whole_numbers_stored_as_floats_as_classes(emoji_split):
    import pandas as pd

    train = emoji_split[0].head(80)
    codes = pd.Series(pd.factorize(train["category"])[0] * 3 + 2.0)  # floats, as pandas has them after a NaN
    assert len(np.unique(codes)) > 5  # AutoMM alone would read these as amounts
    model = AutoMMClassifier(**tiny(max_epochs=1)).fit(train[["image", "name"]], codes)
    np.testing.assert_array_equal(model.classes_, np.unique(codes))
    with pytest.raises(Exception, match=r"needs class labels, got 'continuous' values \(2.5, .*not whole"):
        AutoMMClassifier(**tiny(max_epochs=1)).fit(train[["image", "name"]], codes + 0.5)


def test_scikit_learn_conventions_random_state_generator_and_n_jobs_none(emoji_split):
    train = emoji_split[0].head(40)
    X, y = train[["image", "name"]], train["category"]
    rng = np.random.RandomState(7)
    first = AutoMM(**tiny(max_epochs=1, random_state=rng, n_jobs=None)).fit(X, y)
    second = AutoMM(**tiny(max_epochs=1, random_state=np.random.RandomState(7))).fit(X, y)
    assert first.seed_ == second.seed_  # the seed drawn from the generator
    again = clone(first).fit(X, y)  # the same generator object, drawn from again: another seed
    assert again.seed_ != first.seed_


def test_a_model_fitted_on_unnamed_inputs_takes_a_table_in_column_order_with_a_warning(emoji_split):
    train, test = emoji_split[0].head(40), emoji_split[1].head(6)
    model = AutoMM(**tiny(max_epochs=1)).fit(train["image"].tolist(), train["name"].tolist(), train["category"])
    with pytest.warns(UserWarning, match=r"X has feature names, but AutoMM was fitted without feature names: its "
                                         r"columns \['image', 'name'\] are taken in order as x0: image, x1: text"):
        by_table = model.predict_proba(test[["image", "name"]])
    np.testing.assert_allclose(by_table, model.predict_proba(test["image"].tolist(), test["name"].tolist()))
    with pytest.raises(Exception, match=r"X has 1 features, but AutoMM is expecting 2 .*\(x0: image, x1: text\); "
                                        r"give the same, in the same order: one positional argument per input"):
        model.predict(test["image"].tolist())


def test_cross_val_score_and_grid_search_on_dict_of_columns(emoji_sample):
    from sklearn.model_selection import GridSearchCV, cross_val_score

    frame = emoji_sample[emoji_sample.split == "train"].reset_index(drop=True)
    X = {"image": frame["image"].tolist(), "name": frame["name"].tolist()}
    import pandas as pd

    X = pd.DataFrame(X)
    scores = cross_val_score(AutoMMClassifier(**tiny(max_epochs=1)), X, frame["category"], cv=2)
    assert scores.shape == (2,) and np.all((0 <= scores) & (scores <= 1))
    grid = GridSearchCV(AutoMMClassifier(**tiny(max_epochs=1)), {"learning_rate": [1e-3, 3e-3]}, cv=2)
    grid.fit(X, frame["category"])
    assert grid.best_params_["learning_rate"] in (1e-3, 3e-3)
    assert set(grid.predict(X.head(5))) <= set(frame["category"])


def test_permutation_importance_tells_which_column_carries_the_label(emoji_split):
    """scikit-learn's permutation importance works on a table of columns: shuffling the emoji's
    name costs accuracy, shuffling a column of another row's names (no information) does not."""
    import pandas as pd
    from sklearn.inspection import permutation_importance

    train, test = emoji_split
    rng = np.random.RandomState(0)

    def table(frame):
        return pd.DataFrame({"name": frame["name"], "other": frame["name"].to_numpy()[rng.permutation(len(frame))]})

    model = AutoMMClassifier(**tiny(max_epochs=6, learning_rate=1e-2)).fit(table(train), train["category"])
    result = permutation_importance(model, table(test), test["category"], n_repeats=3, random_state=0)
    name, other = result.importances_mean
    assert name > 0.1 and abs(other) < name / 3


def test_a_pipeline_passing_an_object_array_on_trains_on_its_columns(emoji_split):
    """Transformers hand the next step a 2-D array, of objects where the columns are paths and
    texts (``SimpleImputer`` on strings): it is a table whose columns keep their roles."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline

    train, test = emoji_split
    X_train = train[["image", "name"]].copy()
    X_train.loc[::7, "name"] = np.nan  # what the imputer is there for
    pipe = make_pipeline(SimpleImputer(strategy="constant", fill_value=""),
                         AutoMMClassifier(**tiny(max_epochs=6, learning_rate=1e-2)))
    pipe.fit(X_train, train["category"])
    model = pipe[-1]
    assert model.column_roles_ == {"x0": "image", "x1": "text"}
    assert pipe.score(test[["image", "name"]], test["category"]) > 0.4  # 9 classes: chance is about 0.11


def test_get_feature_names_out_checks_input_features_as_scikit_learn_does():
    """get_feature_names_out(input_features) ignored input_features that were not the columns fit saw,
    where scikit-learn's transformers raise a ValueError (sklearn.utils.validation._check_feature_names_in)."""
    import pandas as pd

    X = pd.DataFrame({"name": [f"{w} item {i}" for w in ("red", "blue") for i in range(10)],
                      "n": [i % 4 for i in range(20)]})
    model = AutoMM(**tiny(max_epochs=1, encoders={"text": "hashed_ngram"})).fit(X, ["r"] * 10 + ["b"] * 10)
    names = model.get_feature_names_out()
    assert list(model.get_feature_names_out(["name", "n"])) == list(names)
    for wrong in (["n", "name"], ["name"], ["wrong", "columns"], ["name", "n", "extra"]):
        with pytest.raises(ValueError, match=r"input_features is not equal to feature_names_in_: got .* fitted on "
                                             r"the columns \['name', 'n'\]"):
            model.get_feature_names_out(wrong)
    with pytest.raises(ValueError, match=r"input_features: expected a list of the 2 input column names, got 'name'"):
        model.get_feature_names_out("name")
    # fitted without names (a 2-D array): any names, as many as its columns
    unnamed = AutoMM(**tiny(max_epochs=1, encoders=None)).fit(np.arange(40.0).reshape(20, 2), ["r"] * 10 + ["b"] * 10)
    assert len(unnamed.get_feature_names_out(["a", "b"])) == len(unnamed.get_feature_names_out())
    with pytest.raises(ValueError, match=r"input_features should have length equal to number of features \(2\), got 3"):
        unnamed.get_feature_names_out(["a", "b", "c"])


def test_fit_leaves_the_global_random_generators_alone(emoji_split):
    import torch

    train, _ = emoji_split
    X, y = train[["image", "name"]].head(96), train["category"].head(96)
    np.random.seed(123)
    torch.manual_seed(123)
    expected = np.random.rand(), torch.rand(1).item()
    np.random.seed(123)
    torch.manual_seed(123)
    AutoMMClassifier(**tiny(max_epochs=1, random_state=7)).fit(X, y)
    assert (np.random.rand(), torch.rand(1).item()) == expected  # a user's draws go on as without the fit
    # without random_state, each fit draws its seed from numpy's generator: two fits, two seeds
    np.random.seed(5)
    first = AutoMMClassifier(**tiny(max_epochs=1, random_state=None)).fit(X, y).seed_
    second = AutoMMClassifier(**tiny(max_epochs=1, random_state=None)).fit(X, y).seed_
    np.random.seed(5)
    assert [first, second] == [np.random.randint(0, 2**31 - 1), np.random.randint(0, 2**31 - 1)]


def test_a_pipeline_can_ask_automm_for_pandas_embeddings(emoji_split):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    train, test = emoji_split
    pipe = make_pipeline(AutoMMClassifier(**tiny(max_epochs=1)), LogisticRegression(max_iter=300))
    pipe.set_output(transform="pandas").fit(train[["image", "name"]].head(96), train["category"].head(96))
    embedding = pipe[0].transform(test[["image", "name"]].head(4))
    assert list(embedding.columns) == list(pipe[0].get_feature_names_out())
    assert embedding.columns[0] == "embedding0" and (embedding.index == test.head(4).index).all()
    assert len(pipe.predict(test[["image", "name"]].head(4))) == 4


def test_a_misspelt_parameter_name_gets_a_suggestion():
    with pytest.raises(TypeError, match=r"AutoMMClassifier\(\) got an unexpected keyword argument 'max_epoch'; "
                                        r"did you mean 'max_epochs'\?"):
        AutoMMClassifier(max_epoch=1)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'zzz'$"):
        AutoMM(zzz=1)
    import pickle

    assert pickle.loads(pickle.dumps(AutoMM(max_epochs=3))).max_epochs == 3  # unpickling passes no parameters


def test_sample_weights_passed_positionally_after_a_table_are_refused(emoji_split):
    """scikit-learn's ``fit(X, y, sample_weight)``: automm's positional inputs read y as a feature
    and the weights as the labels, and trained on that without a word."""
    from automm import InputError

    train, _ = emoji_split
    X, y, w = train[["name"]], train["category"], np.ones(len(train))
    for table in (X, {"name": train["name"].tolist()}, np.zeros((len(train), 3))):
        with pytest.raises(InputError, match=r"fit: the first argument is a table \((DataFrame|dict|ndarray).* and 2 "
                                             r"more follow.*fit\(X, y, sample_weight=w\)"):
            AutoMMClassifier(**tiny(max_epochs=1)).fit(table, y, w)
    model = AutoMMClassifier(**tiny(max_epochs=1)).fit(X, y, sample_weight=w)
    with pytest.raises(InputError, match=r"score: the first argument is a table"):
        model.score(X, y, w)
    assert 0.0 <= model.score(X, y, sample_weight=w) <= 1.0
    # positional inputs, one column each, stay as they were
    AutoMMClassifier(**tiny(max_epochs=1)).fit(train["image"].tolist(), train["name"].tolist(), y)


def test_automm_with_a_class_problem_type_refuses_continuous_labels_as_the_classifier_does():
    from automm import InputError

    texts, y = [f"item {i}" for i in range(40)], np.linspace(0.05, 0.95, 40)
    with pytest.raises(InputError, match=r"problem_type='multiclass' needs class labels, but y holds 'continuous' "
                                         r"values \(0\.05, "):
        AutoMM(**tiny(max_epochs=1, problem_type="multiclass")).fit(texts, y)
    assert AutoMM(**tiny(max_epochs=1, problem_type="multiclass")).fit(texts, (y > 0.5).astype(float)).classes_.size == 2


def test_feature_names_in_only_for_a_table_whose_column_names_are_strings(emoji_split):
    """As scikit-learn sets it: ``X[model.feature_names_in_]`` must select the columns."""
    import pandas as pd

    train, _ = emoji_split
    named = AutoMMClassifier(**tiny(max_epochs=1)).fit(train[["name"]], train["category"])
    assert list(named.feature_names_in_) == ["name"]
    numbered = pd.DataFrame({0: train["name"].tolist()})  # read_csv(header=None)
    model = AutoMMClassifier(**tiny(max_epochs=1)).fit(numbered, train["category"])
    assert not hasattr(model, "feature_names_in_") and model.n_features_in_ == 1
    assert model.column_roles_ == {"0": "text"}
    assert len(model.predict(numbered)) == len(numbered)


def test_a_nested_parameter_key_says_to_set_the_dict_whole():
    with pytest.raises(ValueError, match=r"encoders__text: encoders is a NoneType parameter, not an estimator.*"
                                         r"set_params\(encoders=\{'text': \.\.\.\}\).*\{'encoders': \[\{'text'"):
        AutoMM().set_params(encoders__text="gru")
    with pytest.raises(ValueError, match=r"search_space__training: search_space is a dict parameter"):
        AutoMM(search_space={"training": {}}).set_params(search_space__training={})
    assert AutoMM().set_params(encoders={"text": "gru"}, max_epochs=2).max_epochs == 2


def test_a_list_of_rows_of_values_is_a_table_as_scikit_learn_reads_it(emoji_split):
    """``list(zip(paths, titles))`` and ``frame.values.tolist()`` are 2-D X to scikit-learn: each
    position a column. They were read as one text column of word lists, the image paths as words."""
    train, test = emoji_split
    X, y = train[["image", "name"]].head(60), train["category"].head(60)
    zipped = list(zip(X["image"], X["name"]))
    model = AutoMMClassifier(**tiny(max_epochs=1)).fit(zipped, y)
    assert model.column_roles_ == {"x0": "image", "x1": "text"}
    rows = X.values.tolist()
    np.testing.assert_allclose(model.predict_proba(rows[:4]), model.predict_proba(X.to_numpy()[:4]))
    assert AutoMMClassifier(**tiny(max_epochs=1)).fit([[p] for p in X["image"]], y).column_roles_ == {"x0": "image"}
    # a column of tags (lists of words) stays one text column
    words = [n.split()[:2] + ["x"] * (2 - len(n.split()[:2])) for n in X["name"]]
    assert AutoMMClassifier(**tiny(max_epochs=1)).fit(words, y).column_roles_ == {"x0": "text"}


def test_a_problem_type_auto_estimator_describes_its_predict_proba():
    """scikit-learn reads ``classifier_tags`` of anything with ``predict_proba`` (its sparse-data
    checks crashed on None), while ``AutoMM()`` is not yet a classifier."""
    from sklearn.base import is_classifier
    from sklearn.utils import get_tags

    assert get_tags(AutoMM()).classifier_tags is not None
    assert not is_classifier(AutoMM())
