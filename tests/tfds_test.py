"""Tests of the TFDS source, offline: tfds.testing.mock_data fakes cycle_gan/horse2zebra.

MockPolicy.USE_CODE builds the examples from the data set's feature spec (random images of
random sizes), with no download and no metadata files; it serves any split name and gives
the same examples on every read. The real builder is exercised too, with every HTTP request
failing at once (`no_network`): it must resolve its download information, and a failed
download must be one clear line.
"""

import re
import signal

import numpy as np
import pytest
import requests
import tensorflow_datasets as tfds

from configs import cyclegan
from jaxfaces import cli, data
from jaxfaces.data import tfds as tfds_source

NAME = "cycle_gan/horse2zebra"


@pytest.fixture
def mock_tfds(tmp_path):
    with tfds.testing.mock_data(
        num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE, data_dir=str(tmp_path)
    ):
        yield


def _cfg(**overrides):
    cfg = cyclegan.get_config().data
    cfg.tfds, cfg.load_size, cfg.size, cfg.batch_size = NAME, 20, 16, 4
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def test_load_split_reads_and_resizes(mock_tfds):
    images, names = tfds_source.load_split(NAME, "trainA", size=12)
    assert images.shape == (6, 12, 12, 3) and images.dtype == np.uint8
    assert names == [f"{i:06d}.png" for i in range(6)]
    assert images.std() > 0
    again, _ = tfds_source.load_split(NAME, "trainA", size=12)
    np.testing.assert_array_equal(images, again)


def test_train_iterator_from_tfds(mock_tfds):
    cfg = _cfg()
    batches = [b for _, b in zip(range(4), data.train_iterator(cfg, seed=0), strict=False)]
    for batch in batches:
        assert set(batch) == {"a", "b"}
        for x in batch.values():
            assert x.shape == (4, 16, 16, 3) and x.dtype == np.float32
            assert -1.0 <= x.min() and x.max() <= 1.0
    resumed = next(data.train_iterator(cfg, seed=0, start_step=3))
    np.testing.assert_array_equal(resumed["a"], batches[3]["a"])
    np.testing.assert_array_equal(resumed["b"], batches[3]["b"])


def test_test_images_from_tfds(mock_tfds):
    images, names = data.test_images(_cfg(), "a")
    assert images.shape == (6, 16, 16, 3) and images.dtype == np.float32
    assert -1.0 <= images.min() < images.max() <= 1.0
    assert names[:2] == ["000000.png", "000001.png"]
    expected, _ = tfds_source.load_split(NAME, "testA", size=16)
    np.testing.assert_array_equal(data.to_uint8(images), expected)


def test_tfds_and_folder_together_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="exactly one data source"):
        data.train_iterator(_cfg(root=str(tmp_path)), seed=0)


class _Hung(BaseException):
    """Raised by the alarm: not an Exception, so no error handling can swallow it."""


@pytest.fixture
def no_network(monkeypatch):
    """Every HTTP request fails at once with a ConnectionError (recorded), and the test is
    stopped after 60 s: nothing is downloaded, even on a machine with internet."""
    urls = []

    def refuse(self, request, **kwargs):
        urls.append(request.url)
        raise requests.exceptions.ConnectionError(f"simulated: no network for {request.url}")

    def hung(signum, frame):
        raise _Hung("TFDS test still running after 60 s")

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", refuse)
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    yield urls
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_real_builder_resolves_download_info(tmp_path, no_network):
    builder = tfds.builder(NAME, data_dir=str(tmp_path))  # Needs importlib_resources.
    assert builder.builder_config.name == "horse2zebra"
    assert tfds_source.IMAGE_KEY in builder.info.features
    url = next(u for u in builder.url_infos if u.endswith("/horse2zebra.zip"))
    info = builder.url_infos[url]
    assert url.startswith("https://")
    assert 100 * 2**20 < int(info.size) < 130 * 2**20  # 111.45 MiB.
    assert re.fullmatch("[0-9a-f]{64}", info.checksum)
    assert not builder.is_prepared()
    assert no_network == [] and not (tmp_path / "downloads").exists()


def test_failed_download_is_one_line_with_cause_and_alternatives(tmp_path, no_network):
    cfg = _cfg(tfds_data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        data.train_iterator(cfg, seed=0)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"TFDS data set {NAME} (config.data.tfds) is not prepared in")
    assert str(tmp_path) in message
    assert "ConnectionError: simulated: no network" in message  # The cause.
    assert f"python -m jaxfaces.data.tfds {NAME} --data_dir=DIR" in message
    assert "--config.data.tfds_data_dir=DIR" in message and "--config.data.root=PATH" in message
    assert any(u.endswith("/horse2zebra.zip") for u in no_network)  # It did try.
    assert cli.input_error(info.value) == message  # train.py: `error: MESSAGE`, exit 2.


def test_prepare_command_reports_failed_download(tmp_path, no_network, capsys):
    assert tfds_source.main([NAME, f"--data_dir={tmp_path}"]) == 2
    lines = capsys.readouterr().err.splitlines()  # TFDS's progress bars, then ours.
    assert [line for line in lines if "error" in line.lower()] == lines[-1:]
    assert lines[-1].startswith(f"error: TFDS data set {NAME} ") and "ConnectionError" in lines[-1]


@pytest.mark.parametrize(
    "name, problem",
    [("cycle_gn/horse2zebra", "Dataset cycle_gn not found"), (NAME[:-1], "horse2zebr not found")],
)
def test_unknown_name_is_one_line(tmp_path, name, problem):
    with pytest.raises(ValueError) as info:
        tfds_source.load_split(name, "trainA", size=8, data_dir=str(tmp_path))
    message = str(info.value)
    assert "\n" not in message and problem in message
    assert message.startswith(f"config.data.tfds={name!r} is not a TFDS data set")
    assert cli.input_error(info.value) == message
