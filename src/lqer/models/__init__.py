"""The models: LQER, its baselines and ablations (`MODELS`), and the whole-frame detector."""

from typing import TYPE_CHECKING

from lqer.lazy import exports

# The shipped weights each verb uses when no model is named (`lqer models` lists them).
PATCH_MODEL = "lqer-padsd"  # predict, evaluate, explain: the paper's task, reproducible
# serve: the multi-site model, at least as good as lqer-padsd on P-ADSD validation/
SERVE_MODEL = "lqer-xca"
FRAME_MODEL = "lqer-arcade"  # scan: a whole-frame detector

_NAMES = {
    "MODELS": "lqer.registry",
    "from_config": "lqer.models.configured",
    "ModelEntry": "lqer.registry",
    "build_model": "lqer.registry",
    "Model": "lqer.models.base",
    "Classifier": "lqer.models.lqer",
    "QuantumHead": "lqer.models.lqer",
}
__all__ = [
    "FRAME_MODEL",
    "PATCH_MODEL",
    "SERVE_MODEL",
    "from_config",
    "Classifier",
    "MODELS",
    "Model",
    "ModelEntry",
    "QuantumHead",
    "build_model",
]
__getattr__ = exports(__name__, _NAMES)

if TYPE_CHECKING:
    from lqer.models.base import Model
    from lqer.models.configured import from_config
    from lqer.models.lqer import Classifier, QuantumHead
    from lqer.registry import MODELS, ModelEntry, build_model
