"""backprop.sklearn: MLPClassifier and MLPRegressor as scikit-learn estimators. They pass
scikit-learn's own estimator checks (every one: no check is expected to fail), and work with
clone, cross_val_score, Pipeline and GridSearchCV."""

import pickle

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from backprop import data, nn  # noqa: E402
from backprop.sklearn import MLPClassifier, MLPRegressor  # noqa: E402
from support import REPOSITORY  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# Checks that may not pass, with the reason: none. (Checks that need pandas or the array API
# are skipped by scikit-learn itself when those are not installed.)
EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks([MLPClassifier(), MLPRegressor()],
                         expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    x, y = data.load_csv(REPOSITORY / "examples" / "data" / "digits.csv")
    rows = np.random.default_rng(0).permutation(len(x))[:600]  # the file is ordered by writer
    return x[rows], y[rows]


def test_classifier_fits_predicts_and_scores(digits):
    x, y = digits
    model = MLPClassifier(hidden_layer_sizes=(32,), max_iter=50, batch_size=32,
                          learning_rate_init=0.01, random_state=0)
    assert model.fit(x[:400] / 16, y[:400]) is model
    assert model.score(x[400:] / 16, y[400:]) > 0.9
    proba = model.predict_proba(x[400:] / 16)
    assert proba.shape == (200, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(model.classes_[proba.argmax(1)], model.predict(x[400:] / 16))
    np.testing.assert_allclose(np.exp(model.predict_log_proba(x[400:] / 16)), proba, rtol=1e-6)
    assert model.n_features_in_ == 64 and model.n_outputs_ == 10
    assert 1 <= model.n_iter_ <= 50 and len(model.loss_curve_) == model.n_iter_
    assert isinstance(model.model_, nn.Sequential) and isinstance(model.history_, nn.History)
    assert [c.shape for c in model.coefs_] == [(64, 32), (32, 10)]
    assert [b.shape for b in model.intercepts_] == [(32,), (10,)]


def test_string_labels_and_reproducibility():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    y = np.where(x[:, 0] + x[:, 1] > 0, "yes", "no")
    params = dict(hidden_layer_sizes=(8,), batch_size=16, learning_rate_init=0.01,
                  random_state=3)
    first = MLPClassifier(**params).fit(x, y)
    second = MLPClassifier(**params).fit(x, y)
    assert list(first.classes_) == ["no", "yes"]
    assert set(first.predict(x)) <= {"no", "yes"} and first.score(x, y) > 0.9
    np.testing.assert_array_equal(first.predict_proba(x), second.predict_proba(x))


def test_regressor_single_and_multiple_outputs():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, size=(300, 2))
    y = np.sin(2 * x[:, 0]) + x[:, 1] ** 2
    model = MLPRegressor(hidden_layer_sizes=(32, 32), activation="tanh", max_iter=300,
                         learning_rate_init=0.01, random_state=0).fit(x, y)
    assert model.predict(x).shape == (300,) and model.score(x, y) > 0.95
    both = MLPRegressor(hidden_layer_sizes=(32,), max_iter=300, learning_rate_init=0.01,
                        random_state=0).fit(x, np.stack([y, -y], axis=1))
    assert both.predict(x).shape == (300, 2) and both.score(x, np.stack([y, -y], 1)) > 0.8


def test_sgd_solver_early_stopping_and_weight_decay(digits):
    x, y = digits
    model = MLPClassifier(hidden_layer_sizes=(32,), solver="sgd", learning_rate_init=0.05,
                          momentum=0.9, alpha=1e-3, early_stopping=True, n_iter_no_change=5,
                          max_iter=300, random_state=0).fit(x / 16, y)
    assert model.n_iter_ < 300 and model.history_.stopped_early
    assert len(model.validation_scores_) == model.n_iter_
    assert len(model.validation_loss_curve_) == model.n_iter_
    # The best epoch improved on the ones before by more than tol.
    assert model.best_loss_ == model.validation_loss_curve_[model.history_.best_epoch - 1]
    assert model.score(x / 16, y) > 0.9


def test_max_iter_without_convergence_warns():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(50, 2)), rng.integers(0, 2, 50)
    with pytest.warns(ConvergenceWarning):
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(x, y)


def test_get_params_set_params_and_clone():
    model = MLPClassifier(hidden_layer_sizes=(10, 5), alpha=0.01)
    params = model.get_params()
    assert params["hidden_layer_sizes"] == (10, 5) and params["solver"] == "adam"
    model.set_params(max_iter=7, activation="tanh")
    twin = clone(model)
    assert twin.get_params() == model.get_params() and twin is not model


def test_cross_val_score_pipeline_and_grid_search(digits):
    x, y = digits
    pipeline = make_pipeline(StandardScaler(),
                             MLPClassifier(hidden_layer_sizes=(16,), max_iter=40, batch_size=32,
                                           learning_rate_init=0.01, random_state=0))
    scores = cross_val_score(pipeline, x, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.85
    search = GridSearchCV(pipeline, {"mlpclassifier__hidden_layer_sizes": [(8,), (32,)],
                                     "mlpclassifier__alpha": [1e-4, 1e-2]}, cv=2)
    search.fit(x, y)
    assert search.best_params_["mlpclassifier__hidden_layer_sizes"] in [(8,), (32,)]
    assert search.score(x, y) > 0.9


def test_fitted_estimators_pickle(digits):
    x, y = digits
    model = MLPClassifier(hidden_layer_sizes=(16,), max_iter=20, random_state=0).fit(x / 16, y)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(x / 16), model.predict_proba(x / 16))


@pytest.mark.parametrize("params, match", [
    ({"solver": "lbfgs"}, "lbfgs"), ({"activation": "softmax"}, "activation"),
    ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes"), ({"max_iter": 0}, "max_iter"),
    ({"batch_size": "big"}, "batch_size"), ({"validation_fraction": 1.0}, "validation"),
    ({"learning_rate_init": 0.0}, "learning_rate_init"), ({"alpha": -1.0}, "alpha"),
    ({"n_iter_no_change": 0}, "n_iter_no_change"),
])
def test_bad_hyperparameters_are_refused_at_fit(params, match):
    model = MLPClassifier(**params)  # never in the constructor, as scikit-learn wants
    with pytest.raises(ValueError, match=match):
        model.fit(np.zeros((4, 2)), [0, 1, 0, 1])


def test_unfitted_and_one_class():
    with pytest.raises(NotFittedError):
        MLPRegressor().predict(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="1 class"):
        MLPClassifier().fit(np.zeros((3, 2)), [1, 1, 1])
