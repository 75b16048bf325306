"""Intent classifier for one model serving ten languages: TF-IDF of character and word n-grams
of the folded tokens, a linear SVM, and calibrated probabilities for the fallback threshold.

Chosen over DIET (a quarter of an hour to train on two cores for ten languages) and over
Rasa's LogisticRegressionClassifier on count features (several points of F1 lower in every
language): see docs/decisions/0006-intent-classifier.md and bench/results/nlu_eval.md.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Type

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

log = logging.getLogger(__name__)

SAFE_MODULE_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.")


def _tokens_text(message: Message) -> str:
    tokens = message.get(TOKENS_NAMES[TEXT]) or []
    return " ".join(token.text for token in tokens) or (message.get(TEXT) or "")


def build_pipeline(config: Dict[str, Any]) -> Any:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.svm import LinearSVC

    features = make_union(
        TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(config["char_ngrams"]), sublinear_tf=True),
        TfidfVectorizer(
            analyzer="word",
            ngram_range=tuple(config["word_ngrams"]),
            sublinear_tf=True,
            token_pattern=r"\S+",  # noqa: S106
        ),
    )
    svm = LinearSVC(C=config["C"], class_weight="balanced", random_state=config["random_state"])
    classifier = CalibratedClassifierCV(svm, method="sigmoid", cv=config["calibration_folds"])
    return make_pipeline(features, classifier)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class NgramSvmClassifier(IntentClassifier, GraphComponent):
    """Linear SVM on n-gram TF-IDF with calibrated confidences."""

    @classmethod
    def required_components(cls) -> List[Type]:
        return [Tokenizer]

    @staticmethod
    def required_packages() -> List[str]:
        return ["sklearn"]

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {
            "C": 1.0,
            "char_ngrams": [1, 5],
            "word_ngrams": [1, 2],
            "calibration_folds": 3,
            "random_state": 42,
            "ranking_length": 10,
        }

    def __init__(
        self, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource, model: Optional[Any] = None
    ) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.model = model

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> NgramSvmClassifier:
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        examples = [m for m in training_data.intent_examples if m.get(INTENT) and m.get(TEXT)]
        counts: Dict[str, int] = {}
        for message in examples:
            counts[message.get(INTENT)] = counts.get(message.get(INTENT), 0) + 1
        too_few = {intent for intent, count in counts.items() if count < self.config["calibration_folds"]}
        if too_few:
            log.warning("intents with too few examples to learn, left out: %s", ", ".join(sorted(too_few)))
            examples = [m for m in examples if m.get(INTENT) not in too_few]
        if not examples:
            return self._resource
        import numpy as np

        model = build_pipeline(self.config)
        # an array, not a list: sklearn's calibration compares labels element-wise
        model.fit([_tokens_text(m) for m in examples], np.asarray([m.get(INTENT) for m in examples]))
        self.model = model
        self.persist()
        return self._resource

    def process(self, messages: List[Message]) -> List[Message]:
        if self.model is None:
            return messages
        texts = [_tokens_text(m) for m in messages]
        probabilities = self.model.predict_proba(texts)
        intents = list(self.model.classes_)
        for message, row in zip(messages, probabilities, strict=True):
            ranking = sorted(
                ({"name": name, "confidence": float(p)} for name, p in zip(intents, row, strict=True)),
                key=lambda item: -item["confidence"],
            )
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set("intent_ranking", ranking[: self.config["ranking_length"]], add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process(training_data.training_examples)
        return training_data

    def persist(self) -> None:
        import skops.io as sio

        with self._model_storage.write_to(self._resource) as model_dir:
            sio.dump(self.model, model_dir / "intent_model.skops")

    @classmethod
    def load(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> NgramSvmClassifier:
        import skops.io as sio

        try:
            with model_storage.read_from(resource) as model_dir:
                path = model_dir / "intent_model.skops"
                types = sio.get_untrusted_types(file=path)
                unsafe = [t for t in types if not t.startswith(SAFE_MODULE_PREFIXES)]
                if unsafe:
                    raise ValueError(f"unexpected types in the intent model: {unsafe}")
                return cls(config, model_storage, resource, sio.load(path, trusted=types))
        except ValueError as error:
            log.warning("intent model not loaded (%s)", error)
            return cls(config, model_storage, resource)
