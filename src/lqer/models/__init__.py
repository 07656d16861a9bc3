from lqer.models.base import Model
from lqer.models.lqer import Classifier, QuantumHead
from lqer.models.registry import MODELS, ModelEntry, build_model

__all__ = ["MODELS", "Classifier", "Model", "ModelEntry", "QuantumHead", "build_model"]
