"""MNIST-style data: IDX parsing with digest checks, the seeded split, normalisation, one-hot.

Any folder holding the four IDX files (gzip-compressed or not) is a data set; the expected
SHA-256 of each file's decompressed bytes comes from the config, so a wrong or damaged file is
refused with a message that names it instead of training on silently wrong arrays.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.config import ConfigError, DataConfig, resolve_path

IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
SPLITS = ("train_images", "train_labels", "test_images", "test_labels")


class DataError(ValueError):
    """A data file is missing, damaged or not what the config says it is."""


class MissingFile(DataError):
    """A data file is not there at all: ``load_raw`` says how to provide it."""


# where a data set's files come from, for the message when they are missing (by data.name)
PROVIDERS = {
    "fashion_mnist": "`apt-get install dataset-fashion-mnist` (Debian) puts its files in "
    "/usr/share/datasets/fashion-mnist",
}


def read_idx(path: Path, sha256: str | None = None) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw) and check it against the digest of its raw bytes."""
    path = Path(path)
    candidates = [path, path.with_name(path.name + ".gz")]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise MissingFile(f"{path}: file not found (looked for {path.name} and {path.name}.gz)")
    raw = found.read_bytes()
    if found.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise DataError(f"{found}: not a valid gzip file ({err})") from None
    if sha256 is not None:
        actual = hashlib.sha256(raw).hexdigest()
        if actual != sha256:
            raise DataError(
                f"{found}: SHA-256 of the decompressed bytes is {actual}, expected {sha256}; "
                "the file is damaged or not the one the data config names"
            )
    return parse_idx(raw, str(found))


def parse_idx(raw: bytes, name: str) -> np.ndarray:
    """Parse IDX bytes: two zero bytes, a type code, the rank, big-endian dimensions, data."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise DataError(f"{name}: bad magic number {raw[:4].hex()}; an IDX file starts 0000 08..0e")
    rank = raw[3]
    header = 4 + 4 * rank
    if len(raw) < header:
        raise DataError(f"{name}: truncated header ({len(raw)} bytes, need {header})")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", rank, 4))
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(
            f"{name}: {len(raw)} bytes, expected {expected} for shape {shape} (truncated or padded)"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(shape)


@dataclass(frozen=True)
class Arrays:
    """Inputs (n, d) as floats, one-hot targets (n, k) and integer labels (n,)."""

    x: np.ndarray
    t: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Dataset:
    """The three splits, the digest that identifies the files they came from, and what a
    served model needs to prepare raw pixels the same way (``stats``, raw ``examples``)."""

    train: Arrays
    val: Arrays
    test: Arrays
    digest: str
    name: str
    stats: tuple[float, float] | None  # the training split's pixel mean and sd (train_stats)
    examples: np.ndarray  # the first test images as raw pixels, rows of 0-255


def digest(cfg: DataConfig) -> str:
    """One digest for the whole data set, from the verified per-file digests: known before
    loading, so a finished run on the same data can be found without reading the files. A
    file the config gives no digest for is hashed as it is on disk: other files under the
    same names must never pass for the same data (a study resumed on them would mix both)."""
    folder = resolve_path(cfg.dir)
    parts = [cfg.sha256.get(k) or _file_digest(folder, cfg.files.get(k)) for k in SPLITS]
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def _file_digest(folder: Path, name: str | None) -> str:
    """The digest of a file's bytes as found (raw or ``.gz``); empty if there is none."""
    paths = (folder / name, folder / f"{name}.gz") if name else ()
    found = next((p for p in paths if p.is_file()), None)
    return hashlib.sha256(found.read_bytes()).hexdigest() if found else ""


def load_raw(cfg: DataConfig) -> tuple[dict[str, np.ndarray], str]:
    """Read and verify the four files; return them and the data set's digest."""
    folder = resolve_path(cfg.dir)
    try:
        arrays = {key: read_idx(folder / cfg.files[key], cfg.sha256[key]) for key in SPLITS}
    except MissingFile as err:
        files = ", ".join(cfg.files[k] for k in SPLITS)
        how = f"{PROVIDERS[cfg.name]}, or " if cfg.name in PROVIDERS else ""
        raise MissingFile(
            f"{err}; data={cfg.name}: {how}set data.dir to a folder holding {files} (or .gz)"
        ) from None
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(images) != len(labels):
            raise DataError(f"{folder}: {len(images)} {split} images but {len(labels)} labels")
    return arrays, digest(cfg)


def normalize(
    x: np.ndarray, mode: str, stats: tuple[float, float] | None, dtype: str
) -> np.ndarray:
    """Scale pixels to [0, 1], then z-score them.

    ``per_image`` is the report's choice: each image by its own mean and standard deviation.
    ``train_stats`` uses the training split's pixel mean and standard deviation (``stats``).
    Statistics are computed in float64; the result is written straight into ``dtype``.
    """
    x = x.reshape(len(x), -1)
    if mode == "per_image":
        mean = x.mean(axis=1, keepdims=True, dtype=np.float64) / 255.0
        std = x.std(axis=1, keepdims=True, dtype=np.float64) / 255.0
        std[std == 0] = 1.0
    else:
        mean, std = stats
    out = x.astype(dtype)
    out *= 1.0 / 255.0
    out -= np.asarray(mean, dtype)
    out *= np.asarray(1.0 / std, dtype)
    return out


def one_hot(labels: np.ndarray, n_classes: int, dtype: str) -> np.ndarray:
    """Targets as rows of zeros with a one at the label (the report's encoding)."""
    out = np.zeros((len(labels), n_classes), dtype)
    out[np.arange(len(labels)), labels] = 1
    return out


def load(cfg: DataConfig, dtype: str = "float32") -> Dataset:
    """Load, split (seeded, ``val_fraction`` of the training files), normalise and one-hot."""
    raw, data_digest = load_raw(cfg)
    images, labels = raw["train_images"], raw["train_labels"].astype(np.int64)
    order = np.random.default_rng(cfg.split_seed).permutation(len(labels))
    if cfg.max_train is not None:
        order = order[: cfg.max_train]
    n_val = round(len(order) * cfg.val_fraction)
    if not 0 < n_val < len(order):
        raise ConfigError(
            f"data.val_fraction={cfg.val_fraction} of {len(order)} images leaves "
            f"{len(order) - n_val} for training and {n_val} for validation: both need at least "
            "one; change data.val_fraction or data.max_train"
        )
    val_idx, train_idx = order[:n_val], order[n_val:]
    test_images, test_labels = raw["test_images"], raw["test_labels"].astype(np.int64)
    if cfg.max_test is not None:
        test_images, test_labels = test_images[: cfg.max_test], test_labels[: cfg.max_test]
    stats = None
    if cfg.normalize == "train_stats":
        pixels = images[train_idx]
        stats = (pixels.mean(dtype=np.float64) / 255.0, pixels.std(dtype=np.float64) / 255.0)
    n_classes = int(labels.max()) + 1

    def arrays(x: np.ndarray, y: np.ndarray) -> Arrays:
        return Arrays(normalize(x, cfg.normalize, stats, dtype), one_hot(y, n_classes, dtype), y)

    return Dataset(
        train=arrays(images[train_idx], labels[train_idx]),
        val=arrays(images[val_idx], labels[val_idx]),
        test=arrays(test_images, test_labels),
        digest=data_digest,
        name=cfg.name,
        stats=stats,
        examples=test_images[:5].reshape(min(5, len(test_images)), -1).copy(),
    )
