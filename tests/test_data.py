"""The IDX loader against MNIST's known facts, and every way a file can be wrong."""

from __future__ import annotations

import gzip
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import ConfigError, DataConfig, resolve_path
from pipeline.data import DataError, digest, load, load_raw, one_hot, read_idx

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
    with pytest.raises(DataError) as err:
        load_raw(cfg)
    expected = cfg.sha256["test_labels"]
    assert str(err.value) == (
        f"{labels}: SHA-256 of the decompressed bytes is {hashlib.sha256(raw).hexdigest()}, "
        f"expected {expected}; the file is damaged or not the one the data config names"
    )
    assert expected.startswith("ff7bcfd4")
    labels.write_bytes(gzip.compress(bytes(raw[:-10])))
    with pytest.raises(DataError, match="SHA-256"):
        load_raw(cfg)
    labels.unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte: file not found"):
        load_raw(cfg)


def test_files_without_a_declared_digest_are_told_apart_by_their_bytes(
    tmp_path: Path, mnist_cfg: DataConfig
) -> None:
    folder = tmp_path / "mnist"
    shutil.copytree(resolve_path(mnist_cfg.dir), folder)
    unverified = {k: None for k in mnist_cfg.sha256}
    cfg = DataConfig(**{**mnist_cfg.__dict__, "dir": str(folder), "sha256": unverified})
    before = digest(cfg)
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[100] = (raw[100] + 1) % 10  # same shapes, other data
    labels.write_bytes(gzip.compress(bytes(raw)))
    assert digest(cfg) != before
    assert digest(mnist_cfg) == digest(DataConfig(**{**mnist_cfg.__dict__, "dir": str(folder)}))


def test_a_missing_data_set_says_where_its_files_come_from(make_config, tmp_path) -> None:
    fashion = make_config("data=fashion_mnist", f"data.dir={tmp_path}")
    with pytest.raises(DataError) as err:
        load_raw(fashion.data)
    assert "apt-get install dataset-fashion-mnist" in str(err.value)  # its Debian package
    assert "set data.dir to a folder holding train-images-idx3-ubyte," in str(err.value)
    with pytest.raises(DataError, match=r"data=mnist: set data\.dir to a folder holding"):
        load_raw(make_config(f"data.dir={tmp_path}").data)


def test_fashion_mnist_is_a_config_away(make_config) -> None:
    cfg = make_config("data=fashion_mnist", "data.max_train=100", "data.max_test=10")
    if not resolve_path(cfg.data.dir).is_dir():
        pytest.skip("apt-get install dataset-fashion-mnist (.ci/run installs it)")
    data = load(cfg.data)
    assert data.name == "fashion_mnist" and data.train.x.shape == (80, 784)
    assert data.digest != load(make_config("data.max_train=100").data).digest


@pytest.mark.parametrize(
    "header",
    [bytes([1, 0, 8, 1]), bytes([0, 1, 8, 1]), bytes([0, 0, 7, 1]), bytes([0, 0, 0x0F, 1])],
)
def test_each_magic_byte_is_checked(tmp_path: Path, header: bytes) -> None:
    path = tmp_path / "bad-magic"
    path.write_bytes(header + (1).to_bytes(4, "big") + b"\x00")
    with pytest.raises(DataError) as err:
        read_idx(path)
    assert str(err.value) == (
        f"{path}: bad magic number {header.hex()}; an IDX file starts 0000 08..0e"
    )


@pytest.mark.parametrize(
    ("code", "values"),
    [
        (0x08, [0, 255]),
        (0x09, [-128, 127]),
        (0x0B, [-2, 300]),
        (0x0C, [-70000, 5]),
        (0x0D, [0.5, -1.25]),
        (0x0E, [1e300, -2.5]),
    ],
)
def test_every_idx_type_is_read_big_endian(tmp_path: Path, code: int, values: list) -> None:
    from pipeline.data import IDX_DTYPES

    payload = np.array(values, dtype=IDX_DTYPES[code]).tobytes()
    (tmp_path / "f").write_bytes(_idx_bytes(code, (2,), payload))
    assert read_idx(tmp_path / "f").tolist() == values


def test_exact_sizes_pass_and_one_byte_less_is_named(tmp_path: Path) -> None:
    (tmp_path / "scalar").write_bytes(bytes([0, 0, 8, 0, 42]))  # rank 0: a header of 4 bytes
    assert read_idx(tmp_path / "scalar").tolist() == 42
    (tmp_path / "none").write_bytes(_idx_bytes(0x08, (0,), b""))  # only a header: no rows
    assert read_idx(tmp_path / "none").shape == (0,)
    (tmp_path / "header").write_bytes(bytes([0, 0, 8, 0]))
    with pytest.raises(DataError) as err:
        read_idx(tmp_path / "header")
    assert str(err.value) == (
        f"{tmp_path / 'header'}: 4 bytes, expected 5 for shape () (truncated or padded)"
    )
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0]))
    with pytest.raises(DataError) as err:
        read_idx(tmp_path / "short")
    assert str(err.value) == f"{tmp_path / 'short'}: truncated header (7 bytes, need 8)"
    (tmp_path / "three").write_bytes(bytes([0, 0, 8]))
    with pytest.raises(DataError, match="bad magic number 000008"):
        read_idx(tmp_path / "three")


def write_tiny_mnist(folder: Path, train: int = 30, test: int = 12) -> DataConfig:
    """A data set of ``train`` + ``test`` 2x3 images (gzip IDX files, as MNIST ships) whose
    pixels encode their row, labels cycling through 0-9; every file's digest in the config."""
    folder.mkdir(parents=True, exist_ok=True)
    pixels = {
        "train": (np.arange(train * 6) * 7 % 256).astype(np.uint8),
        "test": (np.arange(test * 6) * 11 % 256).astype(np.uint8),
    }
    arrays = {
        "train_images": _idx_bytes(0x08, (train, 2, 3), pixels["train"].tobytes()),
        "train_labels": _idx_bytes(0x08, (train,), bytes(i % 10 for i in range(train))),
        "test_images": _idx_bytes(0x08, (test, 2, 3), pixels["test"].tobytes()),
        "test_labels": _idx_bytes(0x08, (test,), bytes((i + 3) % 10 for i in range(test))),
    }
    files, digests = {}, {}
    for key, raw in arrays.items():
        files[key] = f"{key}.idx"
        (folder / f"{key}.idx.gz").write_bytes(gzip.compress(raw))
        digests[key] = hashlib.sha256(raw).hexdigest()
    return DataConfig(name="tiny", dir=str(folder), files=files, sha256=digests)


def test_the_split_sizes_partition_and_caps(tmp_path: Path) -> None:
    cfg = write_tiny_mnist(tmp_path / "tiny")
    data = load(cfg)
    assert (len(data.train), len(data.val), len(data.test)) == (24, 6, 12)  # 20% of 30
    assert sorted([*data.train.y, *data.val.y]) == sorted(i % 10 for i in range(30))
    assert data.train.t.shape == (24, 10) and data.train.x.shape == (24, 6)
    assert data.name == "tiny" and data.stats is None
    raw_test = np.frombuffer(
        gzip.decompress((tmp_path / "tiny/test_images.idx.gz").read_bytes())[16:], np.uint8
    )
    np.testing.assert_array_equal(data.examples, raw_test[:30].reshape(5, 6))
    assert data.test.y.tolist() == [(i + 3) % 10 for i in range(12)]
    small = load(
        DataConfig(**{**cfg.__dict__, "max_train": 20, "max_test": 3, "val_fraction": 0.26})
    )
    assert (len(small.train), len(small.val), len(small.test)) == (15, 5, 3)  # round(5.2)
    assert small.examples.shape == (3, 6)
    assert data.digest == small.digest  # the files, not the split, identify the data set
    files = "".join(
        cfg.sha256[k] for k in ("train_images", "train_labels", "test_images", "test_labels")
    )
    assert data.digest == hashlib.sha256(files.encode()).hexdigest()
    unverified = {**cfg.sha256, "test_labels": None}  # hashed as found on disk instead
    on_disk = (tmp_path / "tiny" / "test_labels.idx.gz").read_bytes()
    files = files.removesuffix(cfg.sha256["test_labels"]) + hashlib.sha256(on_disk).hexdigest()
    unchecked = DataConfig(**{**cfg.__dict__, "sha256": unverified})
    assert digest(unchecked) == hashlib.sha256(files.encode()).hexdigest()
    assert data.train.x.dtype == data.train.t.dtype == np.float32  # unless asked otherwise


def test_the_split_follows_the_split_seed_only(tmp_path: Path) -> None:
    cfg = write_tiny_mnist(tmp_path / "tiny")
    expected = np.random.default_rng(4).permutation(30)
    data = load(DataConfig(**{**cfg.__dict__, "split_seed": 4}))
    assert data.val.y.tolist() == [i % 10 for i in expected[:6]]
    assert data.train.y.tolist() == [i % 10 for i in expected[6:]]


def test_a_split_that_leaves_no_validation_is_refused(tmp_path: Path) -> None:
    cfg = write_tiny_mnist(tmp_path / "tiny")
    with pytest.raises(ConfigError) as err:
        load(DataConfig(**{**cfg.__dict__, "max_train": 10, "val_fraction": 0.04}))
    assert str(err.value) == (
        "data.val_fraction=0.04 of 10 images leaves 10 for training and 0 for validation: both "
        "need at least one; change data.val_fraction or data.max_train"
    )
    assert len(load(DataConfig(**{**cfg.__dict__, "max_train": 10, "val_fraction": 0.1})).val) == 1


def test_train_stats_come_from_the_training_rows_only(tmp_path: Path) -> None:
    cfg = DataConfig(**{**write_tiny_mnist(tmp_path / "tiny").__dict__, "normalize": "train_stats"})
    data = load(cfg, "float64")
    order = np.random.default_rng(0).permutation(30)
    raw = np.arange(30 * 6).reshape(30, 6) * 7 % 256
    pixels = raw[order[6:]] / 255.0
    assert data.stats == pytest.approx((pixels.mean(), pixels.std()), rel=1e-12)
    np.testing.assert_allclose(data.val.x, (raw[order[:6]] / 255.0 - pixels.mean()) / pixels.std())
    assert data.train.x.dtype == np.float64 and data.train.t.dtype == np.float64


def test_per_image_normalisation_keeps_a_blank_image_finite() -> None:
    from pipeline.data import normalize

    x = np.array([[0, 0, 0, 0], [0, 255, 0, 255]], np.uint8)
    out = normalize(x, "per_image", None, "float32")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0, 0, 0, 0], [-1, 1, -1, 1]], atol=1e-6)


def test_mismatched_image_and_label_counts_are_named(tmp_path: Path) -> None:
    cfg = write_tiny_mnist(tmp_path / "tiny")
    raw = _idx_bytes(0x08, (29,), bytes(29))
    (tmp_path / "tiny/train_labels.idx.gz").write_bytes(gzip.compress(raw))
    cfg.sha256["train_labels"] = hashlib.sha256(raw).hexdigest()
    with pytest.raises(DataError) as err:
        load_raw(cfg)
    assert str(err.value) == f"{tmp_path / 'tiny'}: 30 train images but 29 labels"
