"""LQER: hybrid quantum-classical stenosis classification for X-ray coronary angiography."""

from lqer.errors import LqerError

__version__ = "0.1.0"
__all__ = ["LqerError", "__version__"]
