"""LQER: hybrid quantum-classical stenosis classification for X-ray coronary angiography.

    import lqer
    rows = lqer.predict(["patch.png"])                 # the shipped lqer-padsd model
    metrics = lqer.evaluate("data/validation")         # positive/ and negative/ folders
    run = lqer.fit("configs/padsd-cpu.yaml", ["train.epochs=1"])

Names load on first use, so `import lqer` (and the command line's --help) stays fast.
"""

from typing import TYPE_CHECKING

from lqer import logs as logs  # the "lqer" logger prints progress lines
from lqer.errors import LqerError, LqerWarning
from lqer.lazy import exports

__version__ = "0.1.0"
_NAMES = {
    "Loaded": "lqer.api",
    "load": "lqer.api",
    "fit": "lqer.api",
    "finetune": "lqer.api",
    "evaluate": "lqer.api",
    "predict": "lqer.api",
    "scan": "lqer.api",
    "explain": "lqer.api",
    "export": "lqer.api",
    "compare": "lqer.api",
    "noise_sweep": "lqer.api",
    "ExperimentConfig": "lqer.config",
    "load_config": "lqer.config",
    "DetectionConfig": "lqer.detection_config",
    "MODELS": "lqer.registry",
    "build_model": "lqer.registry",
    "Circuit": "lqer.quantum.ansatz",
    "Execution": "lqer.quantum.execution",
    "Noise": "lqer.quantum.execution",
    "LQER_PADSD": "lqer.weights",
    "LQER_ARCADE": "lqer.weights",
}
__all__ = [
    "DetectionConfig", "ExperimentConfig", "LQER_ARCADE", "LQER_PADSD", "Circuit", "Execution",
    "Loaded", "LqerError", "LqerWarning", "MODELS", "Noise", "__version__", "build_model",
    "compare", "evaluate", "explain", "export", "finetune", "fit", "load", "load_config",
    "noise_sweep", "predict", "scan",
]  # fmt: skip
__getattr__ = exports(__name__, _NAMES)

if TYPE_CHECKING:
    from lqer.api import (
        Loaded,
        compare,
        evaluate,
        explain,
        export,
        finetune,
        fit,
        load,
        noise_sweep,
        predict,
        scan,
    )  # fmt: skip
    from lqer.config import ExperimentConfig, load_config
    from lqer.detection_config import DetectionConfig
    from lqer.quantum.ansatz import Circuit
    from lqer.quantum.execution import Execution, Noise
    from lqer.registry import MODELS, build_model
    from lqer.weights import LQER_ARCADE, LQER_PADSD
