"""scikit-learn estimators: MLPClassifier and MLPRegressor trained by libbackprop.

    from backprop.sklearn import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(64,),
                                                          random_state=0))
    model.fit(x_train, y_train).score(x_test, y_test)

The constructor arguments are scikit-learn's MLP hyperparameters (the subset the library
implements), with the same names and defaults; ``fit`` builds a :class:`backprop.nn.Sequential`
(kept as ``model_``) and trains it with the library's loop (``Network.fit``). They work with
``clone``, ``cross_val_score``, ``Pipeline`` and ``GridSearchCV``, and pickle through the
checkpoint format. Differences from scikit-learn's own MLP:

- ``alpha`` is the optimizer's weight decay (an L2 penalty added to the gradient), not a term
  of the reported loss.
- The output layer is a softmax over the classes for every classifier (also with two classes),
  trained with cross-entropy; regressors have linear outputs trained with the mean squared
  error (``loss_curve_`` is the MSE, not half of it).
- ``early_stopping`` monitors the loss on the held-out ``validation_fraction`` (not its score),
  stops after ``n_iter_no_change`` epochs without an improvement of ``tol``, and restores the
  best epoch's weights. Without it, training stops when the training loss stops improving by
  ``tol`` for ``n_iter_no_change`` epochs, as in scikit-learn.
- Solvers are "adam" and "sgd" (with momentum and Nesterov); there is no "lbfgs", no
  ``learning_rate`` schedule for sgd, no ``warm_start`` and no ``partial_fit``.
- Computation is in float32.

Needs scikit-learn (``pip install scikit-learn``); importing this module without it raises
ImportError.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any, List, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from . import nn, optim

__all__ = ["MLPClassifier", "MLPRegressor"]

_ACTIVATIONS = {"identity": None, "logistic": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: checking the hyperparameters, building the
    network and training it."""

    def __init__(self, hidden_layer_sizes: Union[int, Sequence[int]] = (100,),
                 activation: str = "relu", *, solver: str = "adam", alpha: float = 0.0001,
                 batch_size: Union[int, str] = "auto", learning_rate_init: float = 0.001,
                 max_iter: int = 200, shuffle: bool = True,
                 random_state: Optional[Union[int, np.random.RandomState]] = None,
                 tol: float = 1e-4, verbose: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: int = 10) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change

    # Checking
    def _hidden_sizes(self) -> List[int]:
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral):
            sizes = [sizes]
        sizes = list(sizes)
        if not all(isinstance(s, numbers.Integral) and s >= 1 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive integers, got "
                             f"{self.hidden_layer_sizes!r}")
        return [int(s) for s in sizes]

    def _check_hyperparameters(self) -> None:
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got "
                             f"{self.activation!r}")
        if self.solver not in ("adam", "sgd"):
            raise ValueError(f"solver must be 'adam' or 'sgd' (libbackprop has no 'lbfgs'), got "
                             f"{self.solver!r}")
        if not (isinstance(self.max_iter, numbers.Integral) and self.max_iter >= 1):
            raise ValueError(f"max_iter must be a positive integer, got {self.max_iter!r}")
        if not (isinstance(self.n_iter_no_change, numbers.Integral) and
                self.n_iter_no_change >= 1):
            raise ValueError(f"n_iter_no_change must be a positive integer, got "
                             f"{self.n_iter_no_change!r}")
        if self.batch_size != "auto" and not (isinstance(self.batch_size, numbers.Integral)
                                              and self.batch_size >= 1):
            raise ValueError(f"batch_size must be 'auto' or a positive integer, got "
                             f"{self.batch_size!r}")
        if not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got "
                             f"{self.validation_fraction!r}")
        for name in ("alpha", "learning_rate_init", "tol", "momentum", "epsilon"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.learning_rate_init <= 0:
            raise ValueError(f"learning_rate_init must be > 0, got {self.learning_rate_init!r}")

    # Building and training
    def _build(self, n_features: int, n_outputs: int, loss: str, seed: int) -> nn.Sequential:
        modules: List[nn.Module] = []
        width = n_features
        activation = _ACTIVATIONS[self.activation]
        for units in self._hidden_sizes():
            modules.append(nn.Linear(width, units))
            if activation is not None:
                modules.append(activation())
            width = units
        modules.append(nn.Linear(width, n_outputs))
        return nn.Sequential(*modules, seed=seed, loss=loss)

    def _optimizer(self, model: nn.Sequential) -> optim.Optimizer:
        if self.solver == "adam":
            return optim.Adam(model, lr=self.learning_rate_init, betas=(self.beta_1, self.beta_2),
                              eps=self.epsilon, weight_decay=self.alpha)
        return optim.SGD(model, lr=self.learning_rate_init, momentum=self.momentum,
                         nesterov=bool(self.nesterovs_momentum and self.momentum > 0),
                         weight_decay=self.alpha)

    def _train(self, x: np.ndarray, targets: np.ndarray, n_outputs: int, loss: str,
               stratify: Optional[np.ndarray]) -> None:
        self._check_hyperparameters()
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        samples = x.shape[0]
        validation = None
        if self.early_stopping:
            try:
                x, x_val, targets, y_val = train_test_split(
                    x, targets, test_size=self.validation_fraction, random_state=seed,
                    stratify=stratify)
            except ValueError:  # a class too small to stratify
                x, x_val, targets, y_val = train_test_split(
                    x, targets, test_size=self.validation_fraction, random_state=seed)
            validation = (x_val, y_val)
            samples = x.shape[0]
        batch = min(200, samples) if self.batch_size == "auto" else min(self.batch_size,
                                                                            samples)
        model = self._build(x.shape[1], n_outputs, loss, seed)
        history = model.fit(
            x, targets, epochs=self.max_iter, batch_size=batch, shuffle=bool(self.shuffle),
            validation_data=validation, patience=self.n_iter_no_change, min_delta=self.tol,
            restore_best_weights=bool(self.early_stopping), optimizer=self._optimizer(model),
            progress=bool(self.verbose))
        self.model_ = model
        self.history_ = history
        self.n_iter_ = history.epochs_run
        self.loss_curve_ = history["loss"]
        self.best_loss_ = history.best_loss
        if self.early_stopping:
            self.validation_loss_curve_ = history["val_loss"]
        self.n_outputs_ = n_outputs
        if not history.stopped_early and history.epochs_run >= self.max_iter:
            warnings.warn(f"Stochastic optimizer: maximum iterations ({self.max_iter}) reached "
                          f"and the optimization hasn't converged yet.", ConvergenceWarning)

    def _outputs(self, x: npt.ArrayLike) -> np.ndarray:
        check_is_fitted(self, "model_")
        x = validate_data(self, x, reset=False, dtype=(np.float32, np.float64))
        return self.model_.predict(np.asarray(x, dtype=np.float32)).astype(np.float64)

    @property
    def coefs_(self) -> List[np.ndarray]:
        """The weight matrices, [in, out] as scikit-learn lays them out (copies)."""
        check_is_fitted(self, "model_")
        return [w.T.astype(np.float64) for name, w in self.model_.named_parameters()
                if name.endswith(".weight")]

    @property
    def intercepts_(self) -> List[np.ndarray]:
        """The bias vectors (copies)."""
        check_is_fitted(self, "model_")
        return [b.astype(np.float64) for name, b in self.model_.named_parameters()
                if name.endswith(".bias")]


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A multi-layer perceptron classifier, with scikit-learn's MLPClassifier hyperparameters
    (see the module's documentation for the differences).

    Attributes after fit: ``classes_``, ``n_features_in_`` (and ``feature_names_in_``),
    ``n_outputs_``, ``n_iter_``, ``loss_curve_``, ``best_loss_``, ``validation_loss_curve_`` and
    ``validation_scores_`` (with early_stopping), ``coefs_``, ``intercepts_``, ``history_`` (the
    :class:`~backprop.nn.History`) and ``model_`` (the trained :class:`~backprop.nn.Sequential`).
    """

    def fit(self, X: npt.ArrayLike, y: npt.ArrayLike) -> MLPClassifier:
        """Trains on X [samples, features] and class labels y [samples] (any labels: numbers or
        strings). Returns self."""
        x, y = validate_data(self, X, y, dtype=(np.float32, np.float64))
        check_classification_targets(y)
        classes, encoded = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"MLPClassifier needs samples of at least 2 classes; got 1 class "
                             f"({classes[0]!r})")
        self.classes_ = classes
        self._train(np.asarray(x, dtype=np.float32), encoded.astype(np.int32), len(classes),
                    "cross_entropy", stratify=encoded)
        if self.early_stopping:
            self.validation_scores_ = self.history_["val_accuracy"]
        return self

    def predict_proba(self, X: npt.ArrayLike) -> np.ndarray:
        """Class probabilities [samples, classes] (a softmax of the network's outputs), in the
        order of ``classes_``."""
        logits = self._outputs(X)
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X: npt.ArrayLike) -> np.ndarray:
        """The log of :meth:`predict_proba`, computed stably."""
        logits = self._outputs(X)
        logits -= logits.max(axis=1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))

    def predict(self, X: npt.ArrayLike) -> np.ndarray:
        """The most probable class of each sample."""
        outputs = self._outputs(X)  # first: it raises NotFittedError before fit
        return self.classes_[np.argmax(outputs, axis=1)]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """A multi-layer perceptron regressor, with scikit-learn's MLPRegressor hyperparameters
    (see the module's documentation for the differences). Targets y may be [samples] or
    [samples, outputs]; predictions have the same layout.

    Attributes after fit: ``n_features_in_`` (and ``feature_names_in_``), ``n_outputs_``,
    ``n_iter_``, ``loss_curve_``, ``best_loss_``, ``validation_loss_curve_`` (with
    early_stopping), ``coefs_``, ``intercepts_``, ``history_`` and ``model_``.
    """

    def fit(self, X: npt.ArrayLike, y: npt.ArrayLike) -> MLPRegressor:
        """Trains on X [samples, features] and targets y [samples] or [samples, outputs].
        Returns self."""
        x, y = validate_data(self, X, y, dtype=(np.float32, np.float64), multi_output=True,
                             y_numeric=True)
        y = np.asarray(y, dtype=np.float64)
        self._y_ndim = y.ndim
        targets = y.reshape(len(y), -1).astype(np.float32)
        self._train(np.asarray(x, dtype=np.float32), targets, targets.shape[1], "mse",
                    stratify=None)
        return self

    def predict(self, X: npt.ArrayLike) -> np.ndarray:
        """The predicted targets: [samples] when fit had a vector y, else [samples, outputs]."""
        outputs = self._outputs(X)
        return outputs.ravel() if self._y_ndim == 1 else outputs

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

