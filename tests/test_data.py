"""The IDX loader against MNIST's known facts, and every way a file can be wrong."""

from __future__ import annotations

import gzip
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import DataConfig, resolve_path
from pipeline.data import DataError, load, load_raw, one_hot, read_idx

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def mnist_cfg() -> DataConfig:
    from tests.conftest import compose_config

    return DataConfig(**compose_config().data)


@pytest.fixture(scope="module")
def raw(mnist_cfg: DataConfig) -> dict[str, np.ndarray]:
    return load_raw(mnist_cfg)[0]


def test_known_facts(raw: dict[str, np.ndarray]) -> None:
    assert raw["train_images"].shape == (60000, 28, 28)
    assert raw["test_images"].shape == (10000, 28, 28)
    assert raw["train_labels"][:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert raw["test_labels"][:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(raw["train_labels"]).tolist() == TRAIN_COUNTS
    assert np.bincount(raw["test_labels"]).tolist() == TEST_COUNTS
    pixels = raw["train_images"]
    assert pixels.mean(dtype=np.float64) / 255 == pytest.approx(0.1307, abs=5e-5)
    assert pixels.std(dtype=np.float64) / 255 == pytest.approx(0.3081, abs=5e-5)


def test_split_normalisation_and_one_hot(mnist_cfg: DataConfig) -> None:
    data = load(mnist_cfg)
    assert (len(data.train), len(data.val), len(data.test)) == (48000, 12000, 10000)
    assert data.train.x.dtype == np.float32 and data.train.x.shape[1] == 784
    # the report's per-image z-score: every image has mean 0 and standard deviation 1
    assert np.abs(data.train.x.mean(axis=1)).max() < 1e-5
    assert np.abs(data.train.x.std(axis=1) - 1).max() < 1e-4
    assert (data.train.t.argmax(axis=1) == data.train.y).all()
    assert (data.train.t.sum(axis=1) == 1).all()
    # the split is a partition of the 60,000 training images: class counts add up
    counts = np.bincount(data.train.y, minlength=10) + np.bincount(data.val.y, minlength=10)
    assert counts.tolist() == TRAIN_COUNTS


def test_train_stats_normalisation(mnist_cfg: DataConfig) -> None:
    cfg = DataConfig(**{**mnist_cfg.__dict__, "normalize": "train_stats", "max_train": 6000})
    data = load(cfg, "float64")
    assert data.train.x.mean() == pytest.approx(0, abs=1e-9)
    assert data.train.x.std() == pytest.approx(1, abs=1e-9)


def test_split_is_seeded(mnist_cfg: DataConfig) -> None:
    small = {**mnist_cfg.__dict__, "max_train": 1000}
    a, b = load(DataConfig(**small)), load(DataConfig(**small))
    c = load(DataConfig(**{**small, "split_seed": 1}))
    assert np.array_equal(a.val.y, b.val.y)
    assert not np.array_equal(a.val.y, c.val.y)


def test_one_hot() -> None:
    assert one_hot(np.array([2, 0]), 3, "float32").tolist() == [[0, 0, 1], [1, 0, 0]]


def _idx_bytes(magic: int, shape: tuple[int, ...], data: bytes) -> bytes:
    header = bytes([0, 0, magic, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)
    return header + data


def test_reads_raw_and_gzip(tmp_path: Path) -> None:
    payload = _idx_bytes(0x08, (2, 3), bytes(range(6)))
    (tmp_path / "a").write_bytes(payload)
    (tmp_path / "b.gz").write_bytes(gzip.compress(payload))
    digest = hashlib.sha256(payload).hexdigest()
    assert read_idx(tmp_path / "a", digest).tolist() == [[0, 1, 2], [3, 4, 5]]
    assert read_idx(tmp_path / "b", digest).tolist() == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (_idx_bytes(0x08, (2, 3), bytes(5)), r"17 bytes, expected 18 for shape \(2, 3\)"),
        (_idx_bytes(0x08, (2, 3), bytes(7)), "truncated or padded"),
        (b"\x1f\x8b\x08\x00", "bad magic number"),
        (bytes([0, 0, 8, 3, 0, 0]), "truncated header"),
        (b"", "bad magic number"),
    ],
)
def test_corrupt_files_name_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad-idx"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        read_idx(tmp_path / "nothing")


def test_bad_gzip(tmp_path: Path) -> None:
    (tmp_path / "x.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataError, match="not a valid gzip file"):
        read_idx(tmp_path / "x.gz")


def test_digest_mismatch_and_truncated_copy(tmp_path: Path, mnist_cfg: DataConfig) -> None:
    folder = tmp_path / "mnist"
    shutil.copytree(resolve_path(mnist_cfg.dir), folder)
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[100] = (raw[100] + 1) % 10  # one wrong label
    labels.write_bytes(gzip.compress(bytes(raw)))
    cfg = DataConfig(**{**mnist_cfg.__dict__, "dir": str(folder)})
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz: SHA-256 .* expected ff7bcfd4"):
        load_raw(cfg)
    labels.write_bytes(gzip.compress(bytes(raw[:-10])))
    with pytest.raises(DataError, match="SHA-256"):
        load_raw(cfg)
    labels.unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte: file not found"):
        load_raw(cfg)


def test_fashion_mnist_is_a_config_away(make_config) -> None:
    cfg = make_config("data=fashion_mnist", "data.max_train=100", "data.max_test=10")
    if not resolve_path(cfg.data.dir).is_dir():
        pytest.skip("apt-get install dataset-fashion-mnist (.ci/run installs it)")
    data = load(cfg.data)
    assert data.name == "fashion_mnist" and data.train.x.shape == (80, 784)
    assert data.digest != load(make_config("data.max_train=100").data).digest
