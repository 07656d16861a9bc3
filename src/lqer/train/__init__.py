from lqer.models.checkpoint import load_checkpoint, save_checkpoint
from lqer.train.loop import fit

__all__ = ["fit", "load_checkpoint", "save_checkpoint"]
