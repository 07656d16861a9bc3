"""The trained weights that ship with lqer, after torchvision's weights pattern:
`lqer.weights.LQER_PADSD.load()` gives the model, and the entry carries its `transforms()`,
`threshold` and `meta` (training data, metrics, licence). `LQER_ARCADE` is a whole-frame
detector (`lqer scan --checkpoint lqer-arcade`); `LQER_XCA` a patch model of two sites. The
files sit beside this module."""

from lqer.models.weights import WEIGHTS, Weights

LQER_PADSD = WEIGHTS["lqer-padsd"]
LQER_ARCADE = WEIGHTS["lqer-arcade"]
LQER_XCA = WEIGHTS["lqer-xca"]

__all__ = ["LQER_ARCADE", "LQER_PADSD", "LQER_XCA", "WEIGHTS", "Weights"]
