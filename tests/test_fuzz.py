"""Property-based tests of every reader (hypothesis): truncated, bit-flipped and random files of
each accepted image format, random JSON configs, model metadata and manifests. Every case ends
in a usable result or a ``MicrodiffError`` that names the file; never another exception or a
hang (each read runs under a 10 s alarm).

Examples: 50 per (image format x damage), 7 formats x 3 kinds = 1050 image reads; 150 random
configs, 150 model metadata files, 100 manifests. About 15 s on a 2-core CPU.
"""
import contextlib
import io
import json
import signal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from microdiff.config import Config, load_config
from microdiff.data.dataset import read_manifest
from microdiff.data.io import read_image
from microdiff.core.errors import MicrodiffError
from microdiff.generate.pipeline import read_model_meta

FUZZ = settings(max_examples=50, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _img(rng, dtype=np.uint8):
    top = 255 if dtype == np.uint8 else 65535
    return (rng.random((24, 32)) * top).astype(dtype)


def _encode(fmt: str) -> tuple[str, bytes]:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    if fmt == "npy":
        np.save(buf, rng.random((24, 32)).astype(np.float32))
        return ".npy", buf.getvalue()
    if fmt == "tiff16":
        Image.fromarray(_img(rng, np.uint16)).save(buf, format="TIFF")
        return ".tif", buf.getvalue()
    if fmt == "tiff_pages":
        pages = [Image.fromarray(_img(rng)) for _ in range(3)]
        pages[0].save(buf, format="TIFF", save_all=True, append_images=pages[1:])
        return ".tiff", buf.getvalue()
    if fmt == "png16":
        Image.fromarray(_img(rng, np.uint16)).save(buf, format="PNG")
        return ".png", buf.getvalue()
    pil = {"png": "PNG", "jpeg": "JPEG", "bmp": "BMP"}[fmt]
    Image.fromarray(_img(rng)).save(buf, format=pil)
    return {"png": ".png", "jpeg": ".jpg", "bmp": ".bmp"}[fmt], buf.getvalue()


FORMATS = ["png", "png16", "tiff16", "tiff_pages", "jpeg", "bmp", "npy"]
SEEDS = {f: _encode(f) for f in FORMATS}


@contextlib.contextmanager
def alarm(seconds: int):
    def fire(*_):
        raise TimeoutError(f"a read took over {seconds} s")
    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _read_or_named_error(path):
    with alarm(10):
        try:
            arr = read_image(path)
        except MicrodiffError as e:
            assert str(path) in str(e) and "\n" not in str(e), str(e)
            return
    assert arr.ndim == 2 and arr.dtype == np.float32 and np.isfinite(arr).all()
    assert arr.min() >= 0 and arr.max() <= 1


def test_undamaged_files_read():
    import tempfile
    from pathlib import Path
    d = Path(tempfile.mkdtemp())
    for fmt, (suffix, data) in SEEDS.items():
        (d / f"x{suffix}").write_bytes(data)
        assert read_image(d / f"x{suffix}").shape == (24, 32), fmt


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(cut=st.floats(0, 1, exclude_max=True))
def test_truncated_images(tmp_path, fmt, cut):
    suffix, data = SEEDS[fmt]
    path = tmp_path / f"t{suffix}"
    path.write_bytes(data[:int(cut * len(data))])
    _read_or_named_error(path)


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 7)), min_size=1, max_size=8))
def test_bit_flipped_images(tmp_path, fmt, flips):
    suffix, data = SEEDS[fmt]
    b = bytearray(data)
    for pos, bit in flips:
        b[int(pos * len(b))] ^= 1 << bit
    path = tmp_path / f"f{suffix}"
    path.write_bytes(bytes(b))
    _read_or_named_error(path)


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(data=st.binary(max_size=4096), keep_magic=st.booleans())
def test_random_files_with_an_image_name(tmp_path, fmt, data, keep_magic):
    suffix, seed = SEEDS[fmt]
    path = tmp_path / f"r{suffix}"
    path.write_bytes((seed[:16] if keep_magic else b"") + data)        # a valid magic number, then noise
    _read_or_named_error(path)


SECTIONS = {"model": ["image_size", "channel_mult", "norm_groups", "learn_sigma", "eps_skip_sigma", "dropout"],
            "diffusion": ["timesteps", "schedule", "recipe", "lambda_vlb"],
            "train": ["lr", "steps", "batch_size", "ema_decay", "grad_accum", "augment", "seed"],
            "sample": ["sampler", "steps", "guidance"]}
JSON = st.recursive(st.none() | st.booleans() | st.integers(-10 ** 12, 10 ** 12) | st.floats(allow_nan=True)
                    | st.text(max_size=12), lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=10)
CONFIG_LIKE = st.dictionaries(st.sampled_from(list(SECTIONS) + ["bogus"]),
                              st.one_of(JSON, st.dictionaries(st.sampled_from(sum(SECTIONS.values(), [])), JSON,
                                                              max_size=4)), max_size=4)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.one_of(JSON, CONFIG_LIKE))
def test_random_config_files(tmp_path, doc):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    try:
        cfg = load_config("cpu", path)
    except MicrodiffError as e:
        assert str(path) in str(e) and "\n" not in str(e), str(e)
        return
    assert isinstance(cfg, Config)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.one_of(JSON, st.fixed_dictionaries({"class_names": JSON, "config": st.one_of(JSON, CONFIG_LIKE)})),
       raw=st.one_of(st.none(), st.binary(max_size=64)))
def test_random_model_metadata(tmp_path, doc, raw):
    (tmp_path / "microdiff.json").write_bytes(raw if raw is not None else json.dumps(doc).encode())
    try:
        cfg, names = read_model_meta(tmp_path)
    except MicrodiffError as e:
        assert str(tmp_path / "microdiff.json") in str(e), str(e)
        return
    assert isinstance(cfg, Config) and names and all(isinstance(n, str) for n in names)


@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin1"))),
       header=st.booleans())
def test_random_manifests(tmp_path, text, header):
    body = ("file,class,source\n" if header else "") + text
    (tmp_path / "manifest.csv").write_bytes(body.encode("utf-8", "surrogatepass")
                                            if header else body.encode("latin1", "replace"))
    try:
        rows = read_manifest(tmp_path)
    except MicrodiffError as e:
        assert str(tmp_path / "manifest.csv") in str(e), str(e)
        return
    assert all("file" in r and "class" in r for r in rows)
