from lqer.models.lqer import LQER, MODELS, QuantumHead, build_model

__all__ = ["LQER", "MODELS", "QuantumHead", "build_model"]
