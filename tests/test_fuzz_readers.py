"""Property-based tests: no input file makes a reader fail with anything but its own errors.

Image readers return 2-D uint8 arrays or raise BadImage (LqerError where frames.py turns it into
one), annotation readers return finite boxes or raise LqerError, so that the CLI reports one line
naming the file instead of a traceback. Inputs: random bytes, valid files cut at random offsets
and valid files with random bytes overwritten. Settings keep the file at a few seconds.
"""

import io
import json
import math
from xml.sax.saxutils import escape

import numpy as np
import pytest
from helpers import write_dicom
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from lqer.data.annotations import check_boxes, read_coco, read_voc, read_yolo
from lqer.data.dicom import read_dicom
from lqer.data.frames import list_frames, read_frames
from lqer.data.images import BadImage, load_gray
from lqer.data.patches import plan_patches
from lqer.errors import LqerError

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,  # no .hypothesis/ folder in the working tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
pytestmark = [  # broken files warn, by design
    pytest.mark.filterwarnings("ignore::UserWarning:pydicom"),
    pytest.mark.filterwarnings("ignore::UserWarning:PIL"),
]
MAX_PIXELS = 1_000_000  # a mutated header may claim millions of pixels; decoding them is slow


# ---- valid files to break -------------------------------------------------------------------


def encode(array: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def with_sbit(png: bytes, bits: int) -> bytes:
    """`png` with an sBIT chunk after IHDR, which PIL cannot write."""
    import struct
    import zlib

    chunk = b"sBIT" + bytes([bits])
    end_of_ihdr = 8 + 8 + 13 + 4
    crc = struct.pack(">I", zlib.crc32(chunk))
    return png[:end_of_ihdr] + struct.pack(">I", 1) + chunk + crc + png[end_of_ihdr:]


def dicom_bytes(frames: np.ndarray, bits_stored: int) -> bytes:
    buffer = io.BytesIO()
    write_dicom(buffer, frames, bits_stored=bits_stored)
    return buffer.getvalue()


rng = np.random.default_rng(0)
GRAY = rng.integers(0, 256, (12, 10), dtype=np.uint8)
TWELVE = rng.integers(0, 4096, (12, 10)).astype(np.uint16)
RGB = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
exif = Image.Exif()
exif[0x0112] = 6  # orientation: rotate
IMAGES = {
    "png": encode(GRAY, "PNG"),
    "png16": encode(TWELVE, "PNG"),
    "png16-sbit": with_sbit(encode(TWELVE, "PNG"), 12),
    "png-rgb": encode(RGB, "PNG", exif=exif.tobytes()),
    "bmp": encode(GRAY, "BMP"),
    "jpeg": encode(RGB, "JPEG", exif=exif.tobytes()),
    "tiff": encode(GRAY, "TIFF"),
    "tiff16-lzw": encode(TWELVE, "TIFF", compression="tiff_lzw"),
}
DICOM = dicom_bytes(rng.integers(0, 4096, (2, 6, 5)).astype(np.uint16), 12)
MAGIC = [b"\x89PNG\r\n\x1a\n", b"BM", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"GIF89a"]

VOC = b"""<annotation><filename>f.bmp</filename>
<size><width>64</width><height>48</height><depth>1</depth></size>
<object><name>Stenosis</name><bndbox>
<xmin>10</xmin><ymin>12</ymin><xmax>30</xmax><ymax>28</ymax></bndbox></object>
<object><name>Stenosis</name><bndbox>
<xmin>40.5</xmin><ymin>2</ymin><xmax>52</xmax><ymax>9.25</ymax></bndbox></object>
</annotation>"""
YOLO = b"0 0.5 0.5 0.25 0.2\n1 0.1 0.9 0.05 0.05\n\n0 0.7 0.3 0.1 0.1\n"
COCO = json.dumps(
    {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 64, "height": 48},
            {"id": 2, "file_name": "b.png"},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 12, 20, 16]},
            {"id": 2, "image_id": 2, "category_id": 4, "bbox": [1.5, 2, 3, 4]},
        ],
        "categories": [{"id": 3, "name": "Stenosis"}],
    }
).encode()


def mutations(data: bytes) -> st.SearchStrategy[bytes]:
    """`data` with a few bytes overwritten at random offsets."""
    edits = st.lists(
        st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), min_size=1, max_size=8
    )

    def apply(pairs):
        out = bytearray(data)
        for offset, value in pairs:
            out[offset] = value
        return bytes(out)

    return edits.map(apply)


def broken(data: bytes) -> st.SearchStrategy[bytes]:
    """Truncations at random offsets and random mutations of a valid file."""
    return st.one_of(st.integers(0, len(data) - 1).map(lambda n: data[:n]), mutations(data))


RANDOM_IMAGE = st.one_of(
    st.binary(max_size=2048), st.tuples(st.sampled_from(MAGIC), st.binary()).map(b"".join)
)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


# ---- images ---------------------------------------------------------------------------------


def check_image(path) -> None:
    try:
        image = load_gray(path, MAX_PIXELS)
    except BadImage:
        return
    assert image.dtype == np.uint8 and image.ndim == 2 and image.size > 0


@FUZZ
@given(blob=RANDOM_IMAGE)
def test_random_bytes_are_bad_images(scratch, blob):
    (scratch / "random.png").write_bytes(blob)
    check_image(scratch / "random.png")


@pytest.mark.parametrize("name", IMAGES)
def test_valid_images_load(scratch, name):
    (scratch / name).write_bytes(IMAGES[name])
    assert load_gray(scratch / name).shape in ((12, 10), (10, 12))  # EXIF rotates by 90 degrees


@pytest.mark.parametrize("name", IMAGES)
@FUZZ
@given(data=st.data())
def test_broken_images_load_or_are_bad(scratch, name, data):
    path = scratch / f"broken-{name}"
    path.write_bytes(data.draw(broken(IMAGES[name])))
    check_image(path)


# ---- DICOM ----------------------------------------------------------------------------------


def check_dicom(folder, blob: bytes) -> None:
    (folder / "x.dcm").write_bytes(blob)
    try:
        frames = read_dicom(folder / "x.dcm", MAX_PIXELS)
    except BadImage:
        pass
    else:
        assert frames.dtype == np.uint8 and frames.ndim == 3 and frames.size > 0
    try:
        for _, image in read_frames(list_frames(folder), MAX_PIXELS):
            assert image.dtype == np.uint8 and image.ndim == 2 and image.size > 0
    except LqerError:
        pass


def test_valid_dicom_reads(scratch):
    (scratch / "dicom").mkdir(exist_ok=True)
    (scratch / "dicom" / "x.dcm").write_bytes(DICOM)
    assert read_dicom(scratch / "dicom" / "x.dcm").shape == (2, 6, 5)
    assert [ref.id for ref in list_frames(scratch / "dicom")] == ["x_0001", "x_0002"]


@FUZZ
@given(blob=st.one_of(broken(DICOM), st.binary(max_size=1024)))
def test_broken_dicom_reads_or_is_bad(scratch, blob):
    (scratch / "dicom").mkdir(exist_ok=True)
    check_dicom(scratch / "dicom", blob)


@FUZZ
@given(data=st.data())
def test_dicom_with_mutated_dataset_reads_or_is_bad(scratch, data):
    """Mutations after the 128-byte preamble, where pydicom reads tags and lengths."""
    (scratch / "dicom").mkdir(exist_ok=True)
    header, body = DICOM[:132], DICOM[132:]
    check_dicom(scratch / "dicom", header + data.draw(mutations(body)))


# ---- annotations ----------------------------------------------------------------------------


def check_finite_boxes(boxes) -> None:
    for box in boxes:
        corners = (box.xmin, box.ymin, box.xmax, box.ymax)
        assert all(isinstance(v, float) and math.isfinite(v) for v in corners)
        assert isinstance(box.label, str)
    plan_patches(check_boxes("f", list(boxes), 64, 48, []), 64, 48, min_size=4)


def check_voc(path) -> None:
    try:
        boxes = read_voc(path)
    except LqerError:
        return
    check_finite_boxes(boxes)


NUMBER_TEXT = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.floats().map(repr),
    st.sampled_from(["nan", "inf", "-inf", "1e999", "", " 12 ", "0x10", "1_0"]),
    st.text(max_size=6),
)


@FUZZ
@given(blob=st.one_of(st.binary(max_size=1024), st.text(max_size=300).map(str.encode)))
def test_random_voc_is_an_error(scratch, blob):
    (scratch / "random.xml").write_bytes(blob)
    check_voc(scratch / "random.xml")


@FUZZ
@given(blob=broken(VOC))
def test_broken_voc_reads_or_is_an_error(scratch, blob):
    (scratch / "broken.xml").write_bytes(blob)
    check_voc(scratch / "broken.xml")


@FUZZ
@given(fields=st.lists(NUMBER_TEXT, min_size=7, max_size=7), name=st.text(max_size=8))
def test_voc_with_random_fields_reads_or_is_an_error(scratch, fields, name):
    xmin, ymin, xmax, ymax, width, height, depth = (escape(f) for f in fields)
    text = (
        f"<annotation><size><width>{width}</width><height>{height}</height>"
        f"<depth>{depth}</depth></size><object><name>{escape(name)}</name><bndbox>"
        f"<xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax>"
        "</bndbox></object></annotation>"
    )
    (scratch / "fields.xml").write_text(text, encoding="utf-8", errors="surrogatepass")
    check_voc(scratch / "fields.xml")


HOSTILE_XML = {
    "deep": b"<a>" * 100_000 + b"</a>" * 100_000,
    "laughs": b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY l "lol">'
    + b"".join(
        f'<!ENTITY l{k} "{("&l" + (str(k - 1) if k > 1 else "") + ";") * 10}">'.encode()
        for k in range(1, 10)
    )
    + b"]><annotation><object><name>&l9;</name></object></annotation>",
    "encoding": b'<?xml version="1.0" encoding="klingon"?><annotation/>',
    "utf16": "<annotation><object/></annotation>".encode("utf-16"),
}


@pytest.mark.parametrize("name", HOSTILE_XML)
def test_hostile_xml_reads_or_is_an_error(scratch, name):
    (scratch / f"{name}.xml").write_bytes(HOSTILE_XML[name])
    try:
        assert read_voc(scratch / f"{name}.xml") == []  # deep, but valid and without boxes
    except LqerError as e:
        assert f"{name}.xml" in str(e) and "\n" not in str(e)


def check_yolo(path, class_names) -> None:
    try:
        boxes = read_yolo(path, 64, 48, class_names)
    except LqerError:
        return
    check_finite_boxes(boxes)


YOLO_LINE = st.lists(NUMBER_TEXT.filter(lambda t: t.strip() and "\n" not in t), max_size=7)


@FUZZ
@given(
    blob=st.one_of(
        st.binary(max_size=512),
        broken(YOLO),
        st.lists(YOLO_LINE.map(" ".join), max_size=5).map(lambda ls: "\n".join(ls).encode()),
    ),
    class_names=st.sampled_from([None, ["stenosis"], ["a", "b"]]),
)
def test_random_yolo_reads_or_is_an_error(scratch, blob, class_names):
    (scratch / "labels.txt").write_bytes(blob)
    check_yolo(scratch / "labels.txt", class_names)


def check_coco(path) -> None:
    try:
        found = read_coco(path)
    except LqerError:
        return
    assert all(isinstance(frame, str) for frame in found)
    for boxes in found.values():
        check_finite_boxes(boxes)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=12,
)
LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=4),
    st.lists(st.integers(), max_size=3), st.integers(1, 2), st.sampled_from([10**400, "3"]),
)  # fmt: skip
BBOX = st.one_of(
    LEAF, st.lists(st.one_of(st.floats(), st.integers(), LEAF), min_size=4, max_size=4)
)
COCO_LIKE = st.fixed_dictionaries(
    {
        "images": st.lists(st.fixed_dictionaries({"id": LEAF, "file_name": LEAF}), max_size=3),
        "annotations": st.lists(
            st.fixed_dictionaries({"image_id": LEAF, "category_id": LEAF, "bbox": BBOX}),
            max_size=3,
        ),
        "categories": st.lists(st.fixed_dictionaries({"id": LEAF, "name": LEAF}), max_size=2),
    }
)


@FUZZ
@given(blob=st.one_of(st.binary(max_size=512), broken(COCO), JSON.map(json.dumps).map(str.encode)))
def test_random_coco_is_read_or_an_error(scratch, blob):
    (scratch / "random.json").write_bytes(blob)
    check_coco(scratch / "random.json")


@FUZZ
@given(data=COCO_LIKE)
@example(data={"images": [{"id": 1, "file_name": "a"}], "annotations": [
    {"image_id": 1, "category_id": 1, "bbox": [1e308, 0, 1e308, 1]}]})  # fmt: skip
def test_coco_with_random_fields_reads_or_is_an_error(scratch, data):
    (scratch / "fields.json").write_text(json.dumps(data, default=str))
    check_coco(scratch / "fields.json")


@pytest.mark.parametrize(
    "text", ["[" * 100_000, '{"images": 1' + "0" * 5000 + "}", "\ufeff[]", "{}"]
)
def test_hostile_json_is_an_error(scratch, text):
    (scratch / "hostile.json").write_text(text)
    with pytest.raises(LqerError, match="hostile.json"):
        read_coco(scratch / "hostile.json")
