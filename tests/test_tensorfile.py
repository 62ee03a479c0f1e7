import numpy as np
import pytest
from pocketbench.runner import tensorfile


def test_round_trip_keeps_every_dtype_shape_and_value():
    rng = np.random.default_rng(0)
    sets = [
        [rng.standard_normal((1, 3, 4)).astype(np.float32), np.arange(6, dtype=np.int64).reshape(2, 3)],
        [rng.standard_normal((1, 3, 4)).astype(np.float32), np.array([[-1, 7, 9], [0, 1, 2]], dtype=np.int64)],
    ]
    decoded = tensorfile.decode(tensorfile.encode(sets))
    assert len(decoded) == 2
    for got, want in zip(decoded, sets, strict=True):
        for g, w in zip(got, want, strict=True):
            assert g.dtype == w.dtype and g.shape == w.shape
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int32, np.float16, np.float64, np.bool_])
def test_scalar_types_round_trip(dtype):
    array = np.ones((2, 2), dtype=dtype)
    (decoded,) = tensorfile.decode(tensorfile.encode([[array]]))
    assert decoded[0].dtype == np.dtype(dtype)


def test_zero_dim_tensor_round_trips():
    (decoded,) = tensorfile.decode(tensorfile.encode([[np.array(3.5, dtype=np.float32)]]))
    assert decoded[0].shape == () and decoded[0] == np.float32(3.5)


def test_truncated_file_is_rejected_with_a_clear_error():
    blob = tensorfile.encode([[np.zeros((4, 4), dtype=np.float32)]])
    with pytest.raises(tensorfile.TensorFileError, match="truncated"):
        tensorfile.decode(blob[:-3])


def test_bad_magic_is_rejected():
    with pytest.raises(tensorfile.TensorFileError, match="does not start with PBTF"):
        tensorfile.decode(b"XXXX" + bytes(12))


def test_sets_of_different_sizes_are_rejected():
    with pytest.raises(tensorfile.TensorFileError, match="same number"):
        tensorfile.encode([[np.zeros(1)], [np.zeros(1), np.zeros(1)]])
