"""training.data: finding, downloading and validating the two data sets, and the standard split."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from training import data
from training.cars import DATA_FILE_COLUMNS, FEATURE_NAMES
from training.data import DataError, DataFile

# --- the real files -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist_path(data_paths) -> Path:  # type: ignore[no-untyped-def]
    return data.locate(data.MNIST_FILE, data_paths.data_dir, data_paths.cache_dir)


@pytest.fixture(scope="module")
def auto_mpg_lines(data_paths) -> list[str]:  # type: ignore[no-untyped-def]
    path = data.locate(data.AUTO_MPG_FILE, data_paths.data_dir, data_paths.cache_dir)
    return path.read_text(encoding="ascii").splitlines(keepends=True)


@pytest.mark.data
def test_real_mnist_has_the_keras_layout(mnist: data.Mnist) -> None:
    assert mnist.x_train.shape == (60000, 28, 28)
    assert mnist.x_test.shape == (10000, 28, 28)
    assert mnist.y_train.shape == (60000,)
    assert mnist.y_test.shape == (10000,)
    for array in (mnist.x_train, mnist.y_train, mnist.x_test, mnist.y_test):
        assert array.dtype == np.uint8
    assert set(np.unique(mnist.y_test)) == set(range(10))
    # White ink on black: the background (most pixels) is 0 and strokes reach 255.
    assert mnist.x_test.max() == 255
    assert np.median(mnist.x_test) == 0
    assert np.bincount(mnist.y_test).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]


@pytest.mark.data
def test_real_auto_mpg_parses_as_the_tutorial_does(auto_mpg) -> None:  # type: ignore[no-untyped-def]
    assert len(auto_mpg) == 392
    assert tuple(auto_mpg.columns) == DATA_FILE_COLUMNS
    assert not auto_mpg.isna().any().any()
    assert auto_mpg["origin"].value_counts().to_dict() == {1: 245, 3: 79, 2: 68}
    assert auto_mpg.iloc[0].to_dict() == {
        "mpg": 18.0,
        "cylinders": 8,
        "displacement": 307.0,
        "horsepower": 130.0,
        "weight": 3504.0,
        "acceleration": 12.0,
        "model_year": 70,
        "origin": 1,
    }


@pytest.mark.data
def test_standard_split_is_the_tutorials_314_and_78_rows(auto_mpg) -> None:  # type: ignore[no-untyped-def]
    train, test = data.standard_split(auto_mpg)
    assert (len(train), len(test)) == (314, 78)
    assert set(train.index).isdisjoint(test.index)
    assert set(train.index) | set(test.index) == set(auto_mpg.index)
    # The training statistics the TensorFlow regression tutorial prints for its split.
    means = train.mean()
    assert means["mpg"] == pytest.approx(23.310510, abs=1e-6)
    assert means["cylinders"] == pytest.approx(5.477707, abs=1e-6)
    assert means["horsepower"] == pytest.approx(104.869427, abs=1e-6)
    assert means["weight"] == pytest.approx(2990.251592, abs=1e-6)
    assert means["model_year"] == pytest.approx(75.898089, abs=1e-6)


@pytest.mark.data
def test_standard_split_is_deterministic(auto_mpg) -> None:  # type: ignore[no-untyped-def]
    first_train, first_test = data.standard_split(auto_mpg)
    second_train, second_test = data.standard_split(auto_mpg.copy())
    assert first_train.index.tolist() == second_train.index.tolist()
    assert first_test.index.tolist() == second_test.index.tolist()
    assert first_test.equals(second_test)


@pytest.mark.data
def test_features_of_gives_one_float32_column_per_model_input(auto_mpg) -> None:  # type: ignore[no-untyped-def]
    _, test = data.standard_split(auto_mpg)
    features = data.features_of(test)
    assert tuple(features) == FEATURE_NAMES
    for name, column in features.items():
        assert column.dtype == np.float32
        assert column.shape == (78,)
        np.testing.assert_array_equal(column, test[name].to_numpy(np.float32))


# --- broken MNIST files ----------------------------------------------------------------------


@pytest.mark.data
@pytest.mark.parametrize("kept", [0.0, 0.5, 0.999])
def test_truncated_mnist_is_a_data_error(mnist_path: Path, tmp_path: Path, kept: float) -> None:
    content = mnist_path.read_bytes()
    broken = tmp_path / "mnist.npz"
    broken.write_bytes(content[: int(len(content) * kept)])
    with pytest.raises(DataError, match="not a readable npz archive") as caught:
        data.load_mnist(broken)
    assert str(broken) in str(caught.value)
    assert "truncated or corrupt" in str(caught.value)


@pytest.mark.data
@pytest.mark.parametrize("offset", [200, 100_000])
def test_corrupt_mnist_is_a_data_error(mnist_path: Path, tmp_path: Path, offset: int) -> None:
    """Damage inside a compressed member: a zlib error at 200, a CRC mismatch further on."""
    content = bytearray(mnist_path.read_bytes())
    for i in range(offset, offset + 8):
        content[i] ^= 0x5A
    broken = tmp_path / "mnist.npz"
    broken.write_bytes(bytes(content))
    with pytest.raises(DataError, match="truncated or corrupt"):
        data.load_mnist(broken)


def test_a_text_file_named_npz_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "mnist.npz"
    path.write_text("<html>404 not found</html>")
    with pytest.raises(DataError, match="not a readable npz archive"):
        data.load_mnist(path)


def _valid_mnist_arrays() -> dict[str, np.ndarray]:
    x_train = np.zeros((60000, 28, 28), np.uint8)
    x_test = np.zeros((10000, 28, 28), np.uint8)
    x_train[:, 14, 14] = x_test[:, 14, 14] = 255
    return {
        "x_train": x_train,
        "y_train": np.arange(60000, dtype=np.uint8) % 10,
        "x_test": x_test,
        "y_test": np.arange(10000, dtype=np.uint8) % 10,
    }


@pytest.fixture
def write_npz(tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    """Writes arrays as an (uncompressed, so quick) npz; the 55 MB files are removed after."""
    path = tmp_path / "mnist.npz"

    def write(**arrays: np.ndarray) -> Path:
        np.savez(path, **arrays)
        return path

    yield write
    path.unlink(missing_ok=True)


def test_a_well_formed_synthetic_mnist_loads(write_npz) -> None:  # type: ignore[no-untyped-def]
    """The base the following broken files are made from is itself valid."""
    loaded = data.load_mnist(write_npz(**_valid_mnist_arrays()))
    assert loaded.x_train.shape == (60000, 28, 28)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"y_test": None}, "has no array 'y_test'"),
        (
            {"x_train": np.zeros((100, 28, 28), np.uint8)},
            r"x_train is uint8\[100, 28, 28\], expected uint8\[60000, 28, 28\]",
        ),
        ({"x_test": np.zeros((10000, 784), np.uint8)}, r"x_test is uint8\[10000, 784\]"),
        (
            {"y_train": np.zeros(60000, np.int64)},
            r"y_train is int64\[60000\], expected uint8\[60000\]",
        ),
        ({"y_test": np.full(10000, 10, np.uint8)}, "y_test holds labels above 9"),
        ({"x_test": np.full((10000, 28, 28), 1, np.uint8)}, "x_test has no bright pixels"),
    ],
    ids=["missing-key", "short-x-train", "flat-x-test", "int64-labels", "label-10", "dim-images"],
)
def test_wrong_mnist_arrays_are_data_errors(write_npz, change, message) -> None:  # type: ignore[no-untyped-def]
    arrays = _valid_mnist_arrays()
    for key, value in change.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    path = write_npz(**arrays)
    with pytest.raises(DataError, match=message) as caught:
        data.load_mnist(path)
    assert str(path) in str(caught.value)


def test_object_arrays_are_refused_not_unpickled(write_npz) -> None:  # type: ignore[no-untyped-def]
    arrays = _valid_mnist_arrays()
    arrays["x_train"] = np.array([{"not": "pixels"}], dtype=object)
    with pytest.raises(DataError, match="not a readable npz archive"):
        data.load_mnist(write_npz(**arrays))


# --- broken auto-mpg.data files --------------------------------------------------------------


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "auto-mpg.data"
    path.write_text("".join(lines), encoding="ascii")
    return path


def _drop_field(line: str, index: int) -> str:
    numbers, name = line.split("\t")
    fields = numbers.split()
    del fields[index]
    return "   ".join(fields) + "\t" + name


@pytest.mark.data
def test_a_truncated_auto_mpg_names_its_row_count(auto_mpg_lines, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = _write(tmp_path, auto_mpg_lines[:300])
    with pytest.raises(DataError, match="has 300 rows, expected the 398") as caught:
        data.load_auto_mpg(path)
    assert "truncated" in str(caught.value)


@pytest.mark.data
def test_an_auto_mpg_cut_mid_line_is_a_data_error(auto_mpg_lines, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = "".join(auto_mpg_lines)
    path = tmp_path / "auto-mpg.data"
    path.write_text(text[: len(text) // 2 + 7], encoding="ascii")
    with pytest.raises(DataError, match=r"rows, expected the 398"):
        data.load_auto_mpg(path)


@pytest.mark.data
def test_a_comma_separated_auto_mpg_names_the_column(auto_mpg_lines, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    commas = [
        ",".join(line.split("\t")[0].split()) + "\t" + line.split("\t")[1]
        for line in auto_mpg_lines
    ]
    with pytest.raises(
        DataError, match=r"column 'mpg' has a non-numeric value '18.0,8,307.0"
    ) as caught:
        data.load_auto_mpg(_write(tmp_path, commas))
    assert "on line 1" in str(caught.value)


@pytest.mark.data
def test_a_missing_column_is_reported_as_missing_or_shifted(auto_mpg_lines, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shifted = [_drop_field(line, 4) for line in auto_mpg_lines]  # no weight column
    with pytest.raises(DataError, match="0 complete rows, expected 392") as caught:
        data.load_auto_mpg(_write(tmp_path, shifted))
    assert "origin (398 rows)" in str(caught.value)
    assert "missing or shifted" in str(caught.value)


@pytest.mark.data
def test_one_shifted_row_is_a_data_error(auto_mpg_lines, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lines = list(auto_mpg_lines)
    lines[10] = _drop_field(lines[10], 1)
    with pytest.raises(DataError, match="391 complete rows, expected 392") as caught:
        data.load_auto_mpg(_write(tmp_path, lines))
    assert "origin (1 rows)" in str(caught.value)


@pytest.mark.data
def test_an_extra_column_is_caught_by_the_value_ranges(auto_mpg_lines, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    widened = [line.replace("\t", "   1\t", 1) for line in auto_mpg_lines]
    with pytest.raises(DataError, match=r"outside .*columns are probably shifted"):
        data.load_auto_mpg(_write(tmp_path, widened))


@pytest.mark.data
def test_a_non_numeric_value_names_column_value_and_line(auto_mpg_lines, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lines = list(auto_mpg_lines)
    assert " 3449. " in lines[4]
    lines[4] = lines[4].replace(" 3449. ", " heavy ")
    with pytest.raises(DataError) as caught:
        data.load_auto_mpg(_write(tmp_path, lines))
    message = str(caught.value)
    assert "column 'weight'" in message
    assert "'heavy'" in message
    assert "on line 5" in message


@pytest.mark.data
def test_a_value_out_of_range_is_a_data_error(auto_mpg_lines, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lines = list(auto_mpg_lines)
    numbers, name = lines[0].split("\t")
    fields = numbers.split()
    fields[6] = "170"
    lines[0] = "   ".join(fields) + "\t" + name
    with pytest.raises(DataError, match="model_year = 170 is outside 70-82"):
        data.load_auto_mpg(_write(tmp_path, lines))


@pytest.mark.parametrize("content", [b"", b"\n\n\n"], ids=["empty", "blank-lines"])
def test_an_empty_auto_mpg_is_a_data_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "auto-mpg.data"
    path.write_bytes(content)
    with pytest.raises(DataError, match="has 0 rows, expected the 398"):
        data.load_auto_mpg(path)


def test_a_binary_file_is_not_taken_for_auto_mpg(tmp_path: Path) -> None:
    path = tmp_path / "auto-mpg.data"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    with pytest.raises(DataError, match=r"is not the UCI auto-mpg.data text file"):
        data.load_auto_mpg(path)


# --- where files come from -------------------------------------------------------------------


def test_locate_prefers_the_data_folder_then_the_cache(tmp_path: Path) -> None:
    data_dir, cache_dir = tmp_path / "data", tmp_path / "cache"
    data_dir.mkdir()
    cache_dir.mkdir()
    wanted = DataFile("thing.bin", "http://127.0.0.1:9/thing.bin", "0" * 64)
    (cache_dir / "thing.bin").write_bytes(b"cached")
    assert data.locate(wanted, data_dir, cache_dir, download=False) == cache_dir / "thing.bin"
    (data_dir / "thing.bin").write_bytes(b"configured")
    assert data.locate(wanted, data_dir, cache_dir, download=False) == data_dir / "thing.bin"
    assert data.locate(wanted, None, cache_dir, download=False) == cache_dir / "thing.bin"


def test_offline_without_the_file_names_file_places_and_url(tmp_path: Path) -> None:
    data_dir, cache_dir = tmp_path / "data", tmp_path / "cache"
    data_dir.mkdir()
    with pytest.raises(DataError) as caught:
        data.locate(data.MNIST_FILE, data_dir, cache_dir, download=False)
    message = str(caught.value)
    assert "mnist.npz not found" in message
    assert str(data_dir / "mnist.npz") in message
    assert str(cache_dir / "mnist.npz") in message
    assert data.MNIST_FILE.url in message
    assert "DATA_DIR" in message
    assert not cache_dir.exists()


def test_a_data_folder_that_does_not_exist_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    with pytest.raises(DataError) as caught:
        data.locate(data.AUTO_MPG_FILE, missing, tmp_path / "cache", download=False)
    message = str(caught.value)
    assert f"data folder {missing} does not exist" in message
    assert "auto-mpg.data" in message
    assert "DATA_DIR" in message


def test_a_failed_download_names_file_places_and_url(tmp_path: Path) -> None:
    unreachable = DataFile("auto-mpg.data", "http://127.0.0.1:9/auto-mpg.data", "0" * 64)
    cache_dir = tmp_path / "cache"
    with pytest.raises(DataError) as caught:
        data.locate(unreachable, None, cache_dir)
    message = str(caught.value)
    assert "auto-mpg.data not found" in message
    assert str(cache_dir / "auto-mpg.data") in message
    assert "http://127.0.0.1:9/auto-mpg.data" in message
    assert "download failed" in message
    assert list(cache_dir.iterdir()) == []


class _Files(http.server.BaseHTTPRequestHandler):
    """Serves `routes[path] = (body, declared length)`; a short body mimics a dropped line."""

    routes: dict[str, tuple[bytes, int]] = {}
    requests: list[str] = []

    def do_GET(self) -> None:
        self.requests.append(self.path)
        if self.path not in self.routes:
            self.send_error(404)
            return
        body, length = self.routes[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def file_server() -> Iterator[tuple[str, type[_Files]]]:
    handler = type("Handler", (_Files,), {"routes": {}, "requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_download_is_verified_and_cached(file_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base, handler = file_server
    body = b"18.0   8   307.0\n" * 100
    handler.routes["/good.data"] = (body, len(body))
    wanted = DataFile("good.data", f"{base}/good.data", hashlib.sha256(body).hexdigest())
    cache_dir = tmp_path / "cache"
    path = data.locate(wanted, None, cache_dir)
    assert path == cache_dir / "good.data"
    assert path.read_bytes() == body
    assert data.sha256_of(path) == wanted.sha256
    assert [p.name for p in cache_dir.iterdir()] == ["good.data"]
    # Found in the cache the second time: no second request.
    assert data.locate(wanted, None, cache_dir) == path
    assert handler.requests == ["/good.data"]


def test_a_download_with_the_wrong_sha256_is_discarded(file_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base, handler = file_server
    body = b"<html>a captive portal, not the data</html>\n" * 50
    handler.routes["/mnist.npz"] = (body, len(body))
    expected = hashlib.sha256(b"the real file").hexdigest()
    wanted = DataFile("mnist.npz", f"{base}/mnist.npz", expected)
    cache_dir = tmp_path / "cache"
    with pytest.raises(DataError) as caught:
        data.locate(wanted, None, cache_dir)
    message = str(caught.value)
    assert f"has sha256 {hashlib.sha256(body).hexdigest()}, expected {expected}" in message
    assert "mnist.npz not found" in message
    assert f"{base}/mnist.npz" in message
    assert handler.requests == ["/mnist.npz"]
    assert list(cache_dir.iterdir()) == []  # neither the partial file nor the target


def test_a_download_cut_short_leaves_nothing_behind(file_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base, handler = file_server
    handler.routes["/auto-mpg.data"] = (b"18.0   8", 30_286)
    wanted = DataFile("auto-mpg.data", f"{base}/auto-mpg.data", "0" * 64)
    cache_dir = tmp_path / "cache"
    with pytest.raises(DataError, match="download failed"):
        data.locate(wanted, None, cache_dir)
    assert list(cache_dir.iterdir()) == []


def test_a_missing_remote_file_is_a_data_error(file_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base, _ = file_server
    wanted = DataFile("auto-mpg.data", f"{base}/gone.data", "0" * 64)
    with pytest.raises(DataError, match="404"):
        data.locate(wanted, None, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []
