"""Tests of the TFDS source, offline: tfds.testing.mock_data fakes cycle_gan/horse2zebra.

MockPolicy.USE_CODE builds the examples from the data set's feature spec (random images of
random sizes), with no download and no metadata files; it serves any split name and gives
the same examples on every read.
"""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from configs import cyclegan
from jaxfaces import data
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
