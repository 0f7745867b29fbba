"""Writers: how the items of a run become files. Each is written atomically (a temporary name,
then a rename), and the item's JSON record last, so an item is complete when its record exists.

- ``ImageWriter``: ``OUT/<class>/NNNN.npy`` (float32 in [0, 1], HxW or HxWxC), ``NNNN.png``
  (8-bit gray, or RGB for 3 channels), with a segmentation ``NNNN_labels.npy`` (uint8 phase ids)
  and ``NNNN_labels.png`` (phase k as gray k / (K - 1)), then ``NNNN.json``.
- ``VolumeWriter``: ``OUT/NNNN/volume.npy`` (float32 in [0, 1], axes Z, Y, X), ``volume.tif``
  (a multi-page TIFF stack with ImageJ metadata: Fiji, DREAM.3D), ``volume.vti`` (VTK image data,
  one cell per voxel: ParaView), with a segmentation the same three for ``labels.*`` (uint8) and,
  asked for, ``labels.inp`` (an Abaqus input file: a hexahedral voxel mesh, one element set per
  phase), ``slices.png`` (the three mid-planes), then ``volume.json``.
- A phase model's samples (``encoding`` of K phases) are label maps: ``NNNN_labels.{npy,png}``,
  ``NNNN_probs.npy`` (per-phase probabilities), ``NNNN.png`` colour-mapped; volumes
  ``labels.{npy,tif,vti}``, ``probs.npy``, ``slices.png``, ``volume.json``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from torch import Tensor

from ..core.errors import UsageError
from .records import Item

VOLUME_JSON = "volume.json"


class ImageWriter:
    """Images of a sample folder (see the module's doc), with phase labels by ``segment``, or
    the label maps of a phase model (``encoding``)."""

    def __init__(self, segment: str | None = None, encoding=None):
        self.segment = segment or ""
        self.phases = encoding.phases if encoding is not None and encoding.kind == "phases" else 0
        if self.phases and self.segment:
            raise UsageError(f"--segment {self.segment}: this model makes label maps of {self.phases} phases itself; "
                             "leave --segment out (it splits the gray images of gray models)")

    def complete(self, out_dir: Path, item: Item) -> bool:
        if self.phases:
            d = Path(out_dir) / item.name
            return all((d / f"{item.index:04d}{e}").is_file() for e in PHASE_FILES)
        return sample_complete(out_dir, item.name, item.index, self.segment)

    def write(self, out_dir: Path, item: Item, image: Tensor, record: dict) -> list[Path]:
        if self.phases:
            return write_phase_sample(out_dir, item.name, item.index, image, record)
        return write_sample(out_dir, item.name, item.index, image, record, self.segment)


PHASE_FILES = ("_labels.npy", "_labels.png", "_probs.npy", ".png", ".json")


def write_phase_sample(out_dir: Path, class_name: str, index: int, image: Tensor, record: dict | None = None
                       ) -> list[Path]:
    """A phase model's sample: ``NNNN_labels.npy`` (uint8 ids, the arg-max phase),
    ``NNNN_labels.png`` (phase k as gray k / (K - 1)), ``NNNN_probs.npy`` (float16 (K, H, W),
    per-phase probabilities), ``NNNN.png`` (the labels colour-mapped, for people), ``NNNN.json``
    last (with the phase fractions). ``image``: (K, H, W) channel values in [0, 1]."""
    from ..core.files import write_text_atomic
    from ..data.encoding import argmax_labels, colorize, label_levels, probabilities
    from ..data.io import save_npy, save_png
    from ..metrics.segmentation import phase_fractions
    d = Path(out_dir) / class_name
    d.mkdir(parents=True, exist_ok=True)
    probs = probabilities(image.float().numpy())
    labels = argmax_labels(probs)
    k = probs.shape[0]
    files = [d / f"{index:04d}{e}" for e in PHASE_FILES]
    save_npy(files[0], labels)
    save_png(files[1], label_levels(labels, k))
    save_npy(files[2], probs.astype(np.float16))
    save_png(files[3], colorize(labels))
    if record is None:
        return files[:4]
    record = {**record, "phases": k, "phase_fractions": [round(float(f), 6) for f in phase_fractions(labels, k)]}
    write_text_atomic(files[4], json.dumps(record, indent=1))
    return files


class VolumeWriter:
    """Volumes of a sample3d folder (see the module's doc), with phase labels by ``segment``."""

    def __init__(self, segment: str | None = None, abaqus: bool = False, encoding=None):
        self.segment, self.abaqus = segment or "", abaqus
        self.phases = encoding.phases if encoding is not None and encoding.kind == "phases" else 0
        check_writers(abaqus)

    def complete(self, out_dir: Path, item: Item) -> bool:
        return (Path(out_dir) / item.key / VOLUME_JSON).is_file()

    def write(self, out_dir: Path, item: Item, volume: Tensor, record: dict) -> list[Path]:
        if self.phases:
            return write_phase_volume(Path(out_dir) / item.key, volume.float().numpy(), record, self.abaqus)
        return write_volume(Path(out_dir) / item.key, volume[0].numpy(), record, self.segment, self.abaqus)


def write_sample(out_dir: Path, class_name: str, index: int, image: Tensor, record: dict | None = None,
                 segment: str | None = None) -> list[Path]:
    """One image's files (the module's doc); ``NNNN.json`` last, and only with a ``record``."""
    from ..data.io import save_npy, save_png
    from ..core.files import write_text_atomic
    d = Path(out_dir) / class_name
    d.mkdir(parents=True, exist_ok=True)
    arr = image.float().clamp(0, 1).numpy()
    arr = arr[0] if arr.shape[0] == 1 else np.moveaxis(arr, 0, -1)
    files = [d / f"{index:04d}.npy", d / f"{index:04d}.png"]
    save_npy(files[0], arr.astype(np.float32))
    save_png(files[1], arr)
    if segment:
        from ..metrics.segmentation import Segmentation, labels_to_png, phase_fractions
        seg = Segmentation.parse(segment)
        labels, thresholds = seg.labels(arr)
        files += [d / f"{index:04d}_labels.npy", d / f"{index:04d}_labels.png"]
        save_npy(files[-2], labels)
        save_png(files[-1], labels_to_png(labels, seg.phases))
        record = {**(record or {}), "segment": str(seg), "thresholds": [round(float(t), 6) for t in thresholds],
                  "phase_fractions": [round(float(f), 6) for f in phase_fractions(labels, seg.phases)]}
    if record is not None:
        files.append(d / f"{index:04d}.json")
        write_text_atomic(files[-1], json.dumps(record, indent=1))
    return files


def sample_complete(out_dir: Path, class_name: str, index: int, segment: str = "") -> bool:
    d = Path(out_dir) / class_name
    exts = (".json", ".npy", ".png") + (("_labels.npy", "_labels.png") if segment else ())
    return all((d / f"{index:04d}{ext}").is_file() for ext in exts)


def check_writers(abaqus: bool = False) -> None:
    """The TIFF and VTK writers are there (checked before any sampling, so no work is lost)."""
    import importlib.util
    missing = [m for m in ("tifffile", "pyevtk") + (("meshio",) if abaqus else ()) if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"writing volumes (TIFF stacks, .vti{', Abaqus .inp' if abaqus else ''}) needs "
                         f"{' and '.join(missing)}: pip install 'microdiff[volume]'")


def save_tiff(path: Path, volume: np.ndarray) -> None:
    """A (Z, Y, X) stack as a multi-page TIFF with ImageJ hyperstack metadata, atomically."""
    import tifffile

    from ..core.files import atomic_path
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, volume, imagej=True, metadata={"axes": "ZYX", "unit": "voxel"})


def save_vti(path: Path, volume: np.ndarray, name: str) -> None:
    """A (Z, Y, X) array as VTK XML image data (.vti), one cell per voxel, x fastest, atomically."""
    from pyevtk.hl import imageToVTK

    from ..core.files import atomic_path
    with atomic_path(path) as tmp:
        imageToVTK(str(tmp.with_suffix("")), cellData={name: np.ascontiguousarray(volume.transpose(2, 1, 0))})
        tmp.with_suffix(".vti").replace(tmp)


def save_abaqus(path: Path, labels: np.ndarray) -> None:
    """A (Z, Y, X) label volume as an Abaqus input file, atomically: one 8-node brick (C3D8) per
    voxel on the unit voxel grid (x, y, z; x fastest, as in ``labels.ravel()``), element set
    ``PHASE<k>`` of the voxels of phase k (through meshio, which reads it back)."""
    import meshio

    from ..core.files import atomic_path
    z, y, x = labels.shape
    gz, gy, gx = np.meshgrid(np.arange(z + 1), np.arange(y + 1), np.arange(x + 1), indexing="ij")
    points = np.stack([gx.ravel(), gy.ravel(), gz.ravel()], 1).astype(np.float64)
    node = np.arange((z + 1) * (y + 1) * (x + 1)).reshape(z + 1, y + 1, x + 1)
    c = node[:-1, :-1, :-1].ravel()
    dx, dy, dz = 1, x + 1, (x + 1) * (y + 1)
    cells = np.stack([c, c + dx, c + dx + dy, c + dy, c + dz, c + dx + dz, c + dx + dy + dz, c + dy + dz], 1)
    flat = labels.ravel()
    sets = {f"PHASE{k}": [np.nonzero(flat == k)[0]] for k in np.unique(flat)}
    mesh = meshio.Mesh(points, [("hexahedron", cells)], cell_sets=sets)
    with atomic_path(path) as tmp:
        meshio.write(tmp, mesh, file_format="abaqus", float_fmt=".1f")


def save_label_volume(folder: Path, labels: np.ndarray, abaqus: bool = False) -> list[Path]:
    """``labels.{npy,tif,vti}`` (uint8 phase ids) and with ``abaqus`` ``labels.inp``."""
    from ..data.io import save_npy
    files = [folder / "labels.npy", folder / "labels.tif", folder / "labels.vti"]
    save_npy(files[0], labels)
    save_tiff(files[1], labels)
    save_vti(files[2], labels, "phase")
    if abaqus:
        files.append(folder / "labels.inp")
        save_abaqus(files[-1], labels)
    return files


def write_volume(folder: Path, volume: np.ndarray, record: dict, segment: str = "", abaqus: bool = False) -> list[Path]:
    """``folder/volume.{npy,tif,vti}``, with ``segment`` ``labels.{npy,tif,vti}``, ``slices.png``
    and last ``volume.json``. ``volume``: (Z, Y, X) float32 in [0, 1]."""
    from ..data.io import save_npy, save_png
    from ..data.figures import orthogonal_slices
    from ..core.files import write_text_atomic
    folder.mkdir(parents=True, exist_ok=True)
    vol = np.clip(volume, 0, 1).astype(np.float32)
    files = [folder / "volume.npy", folder / "volume.tif", folder / "volume.vti"]
    save_npy(files[0], vol)
    save_tiff(files[1], vol)
    save_vti(files[2], vol, "gray")
    labels = None
    if segment:
        from ..metrics.segmentation import Segmentation, phase_fractions
        seg = Segmentation.parse(segment)
        labels, thresholds = seg.labels(vol)
        files += save_label_volume(folder, labels, abaqus)
        record = {**record, "segment": str(seg), "thresholds": [round(float(t), 6) for t in thresholds],
                  "phase_fractions": [round(float(f), 6) for f in phase_fractions(labels, seg.phases)]}
    files.append(folder / "slices.png")
    save_png(files[-1], orthogonal_slices(vol, labels))
    files.append(folder / VOLUME_JSON)
    write_text_atomic(files[-1], json.dumps({**record, "files": [f.name for f in files[:-1]]}, indent=1))
    return files


def write_phase_volume(folder: Path, channels: np.ndarray, record: dict, abaqus: bool = False) -> list[Path]:
    """A phase model's volume: ``labels.{npy,tif,vti}`` (uint8 ids, the arg-max phase), with
    ``abaqus`` ``labels.inp``, ``probs.npy`` (float16 (K, Z, Y, X) per-phase probabilities),
    ``slices.png`` (phase k as gray k / (K - 1)), then ``volume.json`` with the phase fractions.
    ``channels``: (K, Z, Y, X) in [0, 1]."""
    from ..core.files import write_text_atomic
    from ..data.encoding import argmax_labels, label_levels, probabilities
    from ..data.figures import orthogonal_slices
    from ..data.io import save_npy, save_png
    from ..metrics.segmentation import phase_fractions
    folder.mkdir(parents=True, exist_ok=True)
    probs = probabilities(channels)
    labels = argmax_labels(probs)
    k = probs.shape[0]
    files = save_label_volume(folder, labels, abaqus)
    files += [folder / "probs.npy", folder / "slices.png"]
    save_npy(files[-2], probs.astype(np.float16))
    save_png(files[-1], orthogonal_slices(label_levels(labels, k)))
    record = {**record, "phases": k, "phase_fractions": [round(float(f), 6) for f in phase_fractions(labels, k)]}
    files.append(folder / VOLUME_JSON)
    write_text_atomic(files[-1], json.dumps({**record, "files": [f.name for f in files[:-1]]}, indent=1))
    return files
