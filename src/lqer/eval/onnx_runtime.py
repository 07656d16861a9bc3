"""What the ONNX exports share: ONNX Runtime itself, a session with the file's metadata, and the
parity that an export must reach against PyTorch before it is written."""

from __future__ import annotations

from pathlib import Path

from lqer.errors import LqerError

TOLERANCE = 1e-4  # largest difference in probability that export accepts
SAMPLE = Path(__file__).resolve().parents[1] / "sample" / "test"  # bundled P-ADSD patches


def need_onnx():
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise LqerError(
            "ONNX export needs onnx and onnxruntime: pip install 'lqer[onnx]'"
        ) from None
    return onnx, onnxruntime


def onnx_session(path: str | Path, threads: int | None = None) -> tuple[object, dict]:
    """An ONNX Runtime session on the CPU and the file's metadata, or a one-line error."""
    onnx, ort = need_onnx()
    path = Path(path)
    if not path.is_file():
        raise LqerError(f"`onnx`: no such file: {path}")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    try:
        session = ort.InferenceSession(str(path), options, ["CPUExecutionProvider"])
    except Exception as e:  # ONNX Runtime's errors have no common base class
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LqerError(f"`onnx`: {path} is not a loadable ONNX model ({first})") from None
    return session, dict(session.get_modelmeta().custom_metadata_map)
