"""DICOM pixels: LUTs, windows, MONOCHROME1, bit depths, and a clear error for each bad file."""

import numpy as np
import pydicom
import pytest
from helpers import write_dicom

from lqer.data.dicom import read_dicom
from lqer.data.images import BadImage

RAMP = np.linspace(0, 4095, 64).reshape(1, 8, 8).astype(np.uint16)


def test_window_maps_its_range_to_0_255(tmp_path):
    write_dicom(tmp_path / "w.dcm", RAMP, bits_stored=12, WindowCenter=2048, WindowWidth=1024)
    out = read_dicom(tmp_path / "w.dcm")[0].astype(float)
    # the linear window of DICOM PS3.3 C.11.2.1.2.1
    expected = np.clip((RAMP[0] - (2048 - 0.5)) / (1024 - 1) + 0.5, 0, 1) * 255
    np.testing.assert_allclose(out, expected, atol=1)
    assert out.min() == 0 and out.max() == 255  # the window clips both ends of the ramp


def test_modality_lut_comes_before_the_window(tmp_path):
    # stored s, value 2 s - 1000; a window on the values over [0, 2000] is s in [500, 1500]
    tags = dict(RescaleSlope=2, RescaleIntercept=-1000, WindowCenter=1000, WindowWidth=2000)
    write_dicom(tmp_path / "m.dcm", RAMP, bits_stored=12, **tags)
    out = read_dicom(tmp_path / "m.dcm")[0].astype(float)
    value = 2 * RAMP[0].astype(float) - 1000
    expected = np.clip((value - (1000 - 0.5)) / (2000 - 1) + 0.5, 0, 1) * 255
    np.testing.assert_allclose(out, expected, atol=1)


def test_monochrome1_is_inverted_after_the_window(tmp_path):
    tags = dict(WindowCenter=2048, WindowWidth=4096)
    write_dicom(tmp_path / "a.dcm", RAMP, bits_stored=12, **tags)
    write_dicom(tmp_path / "b.dcm", RAMP, "MONOCHROME1", bits_stored=12, **tags)
    a, b = read_dicom(tmp_path / "a.dcm"), read_dicom(tmp_path / "b.dcm")
    np.testing.assert_array_equal(b, 255 - a)


@pytest.mark.parametrize("bits", [8, 10, 12, 14, 16])
def test_stored_bits_set_the_scale(tmp_path, bits):
    frames = np.linspace(0, 2**bits - 1, 64).reshape(1, 8, 8)
    frames = frames.astype(np.uint8 if bits == 8 else np.uint16)
    write_dicom(tmp_path / "x.dcm", frames, bits_stored=bits)
    expected = np.round(frames[0] / (2**bits - 1) * 255)
    np.testing.assert_array_equal(read_dicom(tmp_path / "x.dcm")[0], expected)


def test_signed_pixels_start_at_zero(tmp_path):
    frames = np.linspace(-2048, 2047, 64).reshape(1, 8, 8).astype(np.int16)
    write_dicom(tmp_path / "s.dcm", frames, bits_stored=12)
    out = read_dicom(tmp_path / "s.dcm")[0]
    assert out[0, 0] == 0 and out[-1, -1] == 255 and (np.diff(out.ravel()) >= 0).all()


def test_no_pixel_data_is_a_clear_error(tmp_path):
    write_dicom(tmp_path / "p.dcm", RAMP)
    ds = pydicom.dcmread(tmp_path / "p.dcm")
    del ds.PixelData
    ds.save_as(tmp_path / "p.dcm")
    with pytest.raises(BadImage, match="no pixel data"):
        read_dicom(tmp_path / "p.dcm")


def test_unsupported_transfer_syntax_names_the_package(tmp_path):
    write_dicom(tmp_path / "j.dcm", RAMP)
    ds = pydicom.dcmread(tmp_path / "j.dcm")
    ds.file_meta.TransferSyntaxUID = pydicom.uid.JPEGLSLossless
    ds.PixelData = pydicom.encaps.encapsulate([b"\xff\xd8 not really JPEG-LS \xff\xd9"])
    ds["PixelData"].VR = "OB"
    ds.save_as(tmp_path / "j.dcm", enforce_file_format=True)
    with pytest.raises(BadImage, match=r"JPEG-LS Lossless .* pip install pyjpegls"):
        read_dicom(tmp_path / "j.dcm")


def test_a_file_that_is_not_dicom_is_a_clear_error(tmp_path):
    (tmp_path / "t.dcm").write_text("a radiology report, not an image\n")
    with pytest.raises(BadImage, match="not a DICOM file"):
        read_dicom(tmp_path / "t.dcm")
