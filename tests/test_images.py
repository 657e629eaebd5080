"""images.py: every format and mode loads as upright RGB uint8, bad files fail with one clear line,
label PNGs round-trip exactly, and writes are atomic. Images are made with Pillow in tmp_path."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segviewer.core import images
from segviewer.core.images import ImageLoadError, load_image, load_image_bytes

DEMO = Path(__file__).resolve().parent.parent / "resources" / "demo"

RNG = np.random.default_rng(7)
NOISE = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)


def _save(img: Image.Image, path: Path, **kwargs) -> Path:
    img.save(path, **kwargs)
    return path


def _png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = struct.pack(">I", zlib.crc32(kind + body))
    return struct.pack(">I", len(body)) + kind + body + crc


def _bit_depth(path: Path) -> int:
    data = path.read_bytes()
    assert data[12:16] == b"IHDR"
    return data[24]


# ---------------------------------------------------------------------------------------------
# Formats and modes


@pytest.mark.parametrize("ext, kwargs", [
    (".png", {}), (".bmp", {}), (".tif", {}), (".tiff", {"compression": "tiff_lzw"}),
    (".webp", {"lossless": True}),
])
def test_lossless_rgb_formats_load_exactly(tmp_path, ext, kwargs):
    path = _save(Image.fromarray(NOISE), tmp_path / f"noise{ext}", **kwargs)
    out = load_image(path)
    assert out.dtype == np.uint8 and out.shape == (24, 32, 3)
    np.testing.assert_array_equal(out, NOISE)


def test_demo_image_loads():
    out = load_image(DEMO / "images" / "chelsea.png")
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3


def test_rgba_drops_alpha_keeping_stored_colour(tmp_path):
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = 10, 20, 30
    rgba[0, 0, 3], rgba[0, 1, 3], rgba[0, 2, 3] = 0, 128, 255
    out = load_image(_save(Image.fromarray(rgba, "RGBA"), tmp_path / "a.png"))
    assert out.shape == (2, 3, 3)
    assert (out == [10, 20, 30]).all()  # alpha 0, 128 and 255 alike: like TF decode_png(channels=3)


def test_la_gray_alpha_becomes_gray_rgb(tmp_path):
    img = Image.new("LA", (4, 2), (77, 0))
    out = load_image(_save(img, tmp_path / "la.png"))
    assert out.shape == (2, 4, 3) and (out == 77).all()


def test_palette_with_transparency(tmp_path):
    img = Image.new("P", (3, 1))
    img.putpalette([0, 0, 0, 200, 100, 50, 1, 2, 3] + [0] * (256 * 3 - 9))
    img.putdata([0, 1, 2])
    path = _save(img, tmp_path / "p.png", transparency=1)
    with Image.open(path) as check:
        assert check.mode == "P" and "transparency" in check.info
    out = load_image(path)
    np.testing.assert_array_equal(out[0], [[0, 0, 0], [200, 100, 50], [1, 2, 3]])


def test_gif_first_frame(tmp_path):
    red = Image.new("RGB", (5, 4), (255, 0, 0))
    blue = Image.new("RGB", (5, 4), (0, 0, 255))
    path = _save(red, tmp_path / "anim.gif", save_all=True, append_images=[blue], duration=50)
    with Image.open(path) as check:
        assert check.n_frames == 2
    out = load_image(path)
    assert out.shape == (4, 5, 3) and (out == [255, 0, 0]).all()


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_gray_keeps_high_byte(tmp_path, ext):
    values = np.array([[0, 255, 256], [4660, 65280, 65535]], dtype=np.uint16)
    img = Image.frombytes("I;16", (3, 2), values.astype("<u2").tobytes())
    out = load_image(_save(img, tmp_path / f"g16{ext}"))
    expected = (values >> 8).astype(np.uint8)  # 0, 0, 1, 0x12, 0xff, 0xff
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], expected)


def test_16bit_rgb_png_keeps_high_byte(tmp_path):
    # Pillow cannot write 16-bit RGB, so build the PNG chunk by chunk.
    values = np.array([[[0x1234, 0xFF00, 0x00FF], [65535, 256, 0]]], dtype=">u2")
    rows = b"".join(b"\x00" + row.tobytes() for row in values)
    header = struct.pack(">IIBBBBB", 2, 1, 16, 2, 0, 0, 0)
    path = tmp_path / "rgb16.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
                     + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b""))
    np.testing.assert_array_equal(load_image(path)[0], [[0x12, 0xFF, 0x00], [255, 1, 0]])


def test_32bit_int_image_is_treated_as_16bit(tmp_path):
    img = Image.fromarray(np.array([[0, 512, 70000]], dtype=np.int32), mode="I")
    out = load_image(_save(img, tmp_path / "i32.tif"))
    np.testing.assert_array_equal(out[0, :, 0], [0, 2, 255])


def test_grayscale_jpeg(tmp_path):
    out = load_image(_save(Image.new("L", (16, 8), 128), tmp_path / "g.jpg", quality=95))
    assert out.shape == (8, 16, 3)
    assert np.abs(out.astype(int) - 128).max() <= 2


@pytest.mark.parametrize("options", [{"quality": 90}, {"quality": 95, "subsampling": 0},
                                     {"quality": 80, "progressive": True}])
def test_jpeg_pixels_are_pillows(tmp_path, options):
    # JPEGs are decoded by simplejpeg (fast path): the pixels must be exactly Pillow's.
    path = _save(Image.fromarray(NOISE), tmp_path / "x.jpg", **options)
    expected = np.asarray(Image.open(path).convert("RGB"))
    out = load_image(path)
    assert out.flags.writeable and np.array_equal(out, expected)


def test_cmyk_jpeg_converts_to_rgb(tmp_path):
    red = Image.new("CMYK", (16, 16), (0, 255, 255, 0))
    path = _save(red, tmp_path / "cmyk.jpg", quality=95)
    with Image.open(path) as check:
        assert check.mode == "CMYK"
    out = load_image(path)
    assert out.shape == (16, 16, 3)
    assert np.abs(out.astype(int) - [255, 0, 0]).max() <= 3


def test_bilevel_image(tmp_path):
    img = Image.new("1", (2, 1))
    img.putpixel((1, 0), 1)
    out = load_image(_save(img, tmp_path / "b.png"))
    np.testing.assert_array_equal(out[0], [[0, 0, 0], [255, 255, 255]])


@pytest.mark.parametrize("orientation, top, bottom", [
    (6, (255, 0, 0), (0, 0, 255)),  # rotate 90° clockwise to display: stored left goes on top
    (8, (0, 0, 255), (255, 0, 0)),  # rotate 90° anticlockwise: stored left goes to the bottom
])
def test_exif_orientation_is_applied(tmp_path, orientation, top, bottom):
    stored = np.zeros((32, 64, 3), dtype=np.uint8)  # 64 wide, 32 tall: left red, right blue
    stored[:, :32] = (255, 0, 0)
    stored[:, 32:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _save(Image.fromarray(stored), tmp_path / "phone.jpg", exif=exif, quality=95)
    out = load_image(path)
    assert out.shape == (64, 32, 3)  # upright: portrait
    top_mean = out[4:28].reshape(-1, 3).mean(axis=0)
    bottom_mean = out[36:60].reshape(-1, 3).mean(axis=0)
    assert np.abs(top_mean - top).max() < 8
    assert np.abs(bottom_mean - bottom).max() < 8


def test_load_image_bytes_matches_file(tmp_path):
    data = _png_bytes(NOISE)
    np.testing.assert_array_equal(load_image_bytes(data, "n.png"), NOISE)


# ---------------------------------------------------------------------------------------------
# Bad input: one line naming the file and what to do


def _error(path_or_bytes) -> str:
    with pytest.raises(ImageLoadError) as info:
        if isinstance(path_or_bytes, bytes):
            load_image_bytes(path_or_bytes, "mem.png")
        else:
            load_image(path_or_bytes)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_truncated_png(tmp_path):
    data = _png_bytes(NOISE)
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    message = _error(path)
    assert str(path) in message and "truncated" in message and "re-download" in message


def test_png_cut_inside_header(tmp_path):
    path = tmp_path / "stub.png"
    path.write_bytes(_png_bytes(NOISE)[:30])
    message = _error(path)
    assert str(path) in message and "truncated or damaged" in message


def test_truncated_jpeg(tmp_path):
    path = _save(Image.fromarray(NOISE), tmp_path / "cut.jpg")
    path.write_bytes(path.read_bytes()[:300])
    message = _error(path)
    assert str(path) in message and "truncated" in message


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    message = _error(path)
    assert str(path) in message and "empty" in message
    assert "empty" in _error(b"")


def test_zero_size_png(tmp_path):
    header = struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0)
    data = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b""))
            + _chunk(b"IEND", b""))
    path = tmp_path / "zero.png"
    path.write_bytes(data)
    message = _error(path)
    assert str(path) in message and "zero size (0x0)" in message


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("these are not pixels\n")
    message = _error(path)
    assert str(path) in message and "not an image file" in message and ".png" in message


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.png"
    message = _error(path)
    assert str(path) in message and "file not found" in message


def test_directory(tmp_path):
    message = _error(tmp_path)
    assert str(tmp_path) in message and "folder" in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path):
    path = _save(Image.fromarray(NOISE), tmp_path / "secret.png")
    path.chmod(0)
    try:
        message = _error(path)
    finally:
        path.chmod(0o644)
    assert str(path) in message and "permission denied" in message


# ---------------------------------------------------------------------------------------------
# Label maps


def test_label_png_8bit_when_ids_fit(tmp_path):
    labels = np.array([[0, 1, 2], [255, 20, 0]], dtype=np.int64)
    path = tmp_path / "l8.png"
    images.save_label_png(path, labels)
    assert _bit_depth(path) == 8
    with Image.open(path) as img:
        assert img.mode == "L"
    out = images.load_label_png(path)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, labels)


def test_label_png_16bit_round_trip(tmp_path):
    labels = np.array([[0, 256, 1000], [65535, 300, 7]], dtype=np.int32)
    path = tmp_path / "l16.png"
    images.save_label_png(path, labels)
    assert _bit_depth(path) == 16
    out = images.load_label_png(path)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, labels)


@pytest.mark.parametrize("labels, words", [
    (np.array([[0, -1]]), "negative"),
    (np.array([[0, 65536]]), "65536"),
    (np.array([[0.0, 1.0]]), "integer"),
    (np.zeros((1, 2, 2), dtype=np.uint8), "2-D"),
])
def test_label_png_rejects_bad_ids(tmp_path, labels, words):
    path = tmp_path / "bad.png"
    with pytest.raises(ValueError, match=words):
        images.save_label_png(path, labels)
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_palette_label_png_gives_indices(tmp_path):
    img = Image.new("P", (3, 1))
    img.putpalette([0, 0, 0, 128, 0, 0, 224, 224, 192] + [0] * (256 * 3 - 9))
    img.putdata([0, 1, 255])
    out = images.load_label_png(_save(img, tmp_path / "voc.png"))
    np.testing.assert_array_equal(out, [[0, 1, 255]])


def test_colour_png_is_not_a_label_map(tmp_path):
    path = _save(Image.fromarray(NOISE), tmp_path / "rgb.png")
    with pytest.raises(ImageLoadError, match="gt_from_color"):
        images.load_label_png(path)


def test_save_rgb_png_round_trip(tmp_path):
    path = tmp_path / "c.png"
    images.save_rgb_png(path, NOISE)
    np.testing.assert_array_equal(load_image(path), NOISE)


def test_encode_png_rejects_other_arrays():
    with pytest.raises(ValueError, match="cannot encode"):
        images.encode_png(np.zeros((2, 2, 3), dtype=np.uint16))


def test_is_valid_png(tmp_path):
    good = tmp_path / "good.png"
    images.save_label_png(good, np.eye(4, dtype=np.uint8))
    assert images.is_valid_png(good)
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:-12])  # everything but IEND: a write that died at the end
    assert not images.is_valid_png(cut)
    jpeg = _save(Image.fromarray(NOISE), tmp_path / "x.png", format="JPEG")
    assert not images.is_valid_png(jpeg)
    assert not images.is_valid_png(tmp_path / "missing.png")
    assert not images.is_valid_png(tmp_path)


# ---------------------------------------------------------------------------------------------
# Atomic writes


def test_atomic_write_replaces_and_sets_normal_permissions(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    images.atomic_write_bytes(path, b"new contents")
    assert path.read_bytes() == b"new contents"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_atomic_write_failure_keeps_old_file_and_no_temp(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(TypeError):
        images.atomic_write_bytes(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_atomic_path_error_removes_partial_output(tmp_path):
    path = tmp_path / "map.png"
    with pytest.raises(RuntimeError), images.atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".png" and not tmp.exists()
        tmp.write_bytes(b"\x89PNG half")
        raise RuntimeError("worker crashed mid-write")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_success_renames(tmp_path):
    path = tmp_path / "map.png"
    with images.atomic_path(path) as tmp:
        Image.fromarray(NOISE).save(tmp)  # a writer that picks the format from the suffix
        assert not path.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["map.png"]
    np.testing.assert_array_equal(load_image(path), NOISE)


# ---------------------------------------------------------------------------------------------
# Finding images


def test_find_images(tmp_path):
    for rel in ["b.png", "a.JPG", "notes.txt", "sub/c.webp", "sub/deep/d.tif", ".hidden/e.png",
                "sub/._f.png", "other/g.bmp"]:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    found = images.find_images([tmp_path])
    rel = [p.relative_to(tmp_path).as_posix() for p in found]
    assert rel == ["a.JPG", "b.png", "other/g.bmp", "sub/c.webp", "sub/deep/d.tif"]

    flat = images.find_images([tmp_path], recursive=False)
    assert [p.name for p in flat] == ["a.JPG", "b.png"]

    mixed = images.find_images([tmp_path / "sub" / "c.webp", str(tmp_path / "*.png"), tmp_path,
                                tmp_path / "missing.png"])
    rel = [p.relative_to(tmp_path).as_posix() for p in mixed]
    # explicit file first, glob next, folder adds the rest once; a missing file is kept to report
    assert rel == ["sub/c.webp", "b.png", "a.JPG", "other/g.bmp", "sub/deep/d.tif",
                   "missing.png"]
    assert images.find_images([str(tmp_path / "*.gif")]) == []


# ---------------------------------------------------------------------------------------------
# The same pixels as TensorFlow's decoders (what a server-side encoded-image signature sees)


def _variants() -> dict[str, bytes]:
    rgba = np.dstack([NOISE, RNG.integers(0, 256, NOISE.shape[:2], dtype=np.uint8)])
    gray16 = RNG.integers(0, 65536, NOISE.shape[:2], dtype=np.uint16)
    palette = Image.fromarray(NOISE).quantize(16)
    made = {
        "rgb": (Image.fromarray(NOISE), "PNG", {}),
        "rgba": (Image.fromarray(rgba, "RGBA"), "PNG", {}),
        "la": (Image.fromarray(rgba[..., 2:], "LA"), "PNG", {}),
        "gray": (Image.fromarray(NOISE[..., 0]), "PNG", {}),
        "gray16": (Image.frombytes("I;16", gray16.shape[::-1], gray16.astype("<u2").tobytes()),
                   "PNG", {}),
        "palette": (palette, "PNG", {"transparency": 3}),
        "bmp": (Image.fromarray(NOISE), "BMP", {}),
        "gif": (palette, "GIF", {}),
    }
    out = {}
    for name, (img, fmt, kwargs) in made.items():
        buf = io.BytesIO()
        img.save(buf, format=fmt, **kwargs)
        out[name] = buf.getvalue()
    return out


def test_pixels_match_tensorflow_decoders():
    tf = pytest.importorskip("tensorflow")
    for name, data in _variants().items():
        expected = tf.io.decode_image(data, channels=3, expand_animations=False).numpy()
        np.testing.assert_array_equal(load_image_bytes(data, name), expected, err_msg=name)


def test_a_chosen_pixel_limit_replaces_pillows_decompression_bomb_guard(tmp_path, monkeypatch):
    import warnings

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # a 50x50 image is then a "bomb"
    path = tmp_path / "big.png"
    Image.fromarray(np.full((50, 50, 3), 7, np.uint8)).save(path)
    with pytest.raises(ImageLoadError) as refused:
        load_image(path)
    assert "decompression-bomb limit" in str(refused.value) and "--max-pixels" in str(
        refused.value) and "\n" not in str(refused.value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even Pillow's warning
        assert load_image(path, max_pixels=5000).shape == (50, 50, 3)
    with pytest.raises(ImageLoadError, match=r"above the limit of 2,000 \(raise it in the app\)"):
        load_image(path, max_pixels=2000, raise_hint="raise it in the app")
    assert Image.MAX_IMAGE_PIXELS == 1000  # the global is put back
