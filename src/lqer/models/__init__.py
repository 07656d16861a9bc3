from lqer.models.baselines import BASELINES
from lqer.models.lqer import LQER, MODELS, QuantumHead, build_model

MODELS.update(BASELINES)

__all__ = ["LQER", "MODELS", "QuantumHead", "build_model"]
