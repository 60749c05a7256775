"""The CSR builder against scipy, and how it reports repeated pairs."""

import numpy as np
import pytest
import scipy.sparse as sp

from alsmf.data.csr import build_csr, count_repeated_pairs


def test_matches_scipy_with_sorted_columns_and_no_repeats():
    rng = np.random.default_rng(0)
    dense = rng.random((30, 20)) * (rng.random((30, 20)) < 0.3)
    rows, cols = np.nonzero(dense)
    order = rng.permutation(len(rows))  # input in any order
    rows, cols = rows[order].astype(np.int32), cols[order].astype(np.int32)
    values = dense[rows, cols].astype(np.float32)
    matrix, repeated = build_csr(rows, cols, values, (30, 20))
    expected = sp.csr_matrix(dense.astype(np.float32))
    assert repeated == 0
    np.testing.assert_array_equal(matrix.indptr, expected.indptr)
    np.testing.assert_array_equal(matrix.indices, expected.indices)
    np.testing.assert_array_equal(matrix.data, expected.data)
    assert matrix.indices.dtype == np.int32 and matrix.data.dtype == np.float32


def test_repeated_pairs_are_counted_and_kept_side_by_side_in_input_order():
    rows = np.array([1, 0, 1, 1, 0], dtype=np.int32)
    cols = np.array([2, 0, 0, 2, 0], dtype=np.int32)
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0], dtype=np.float32)
    matrix, repeated = build_csr(rows, cols, values, (2, 3))
    assert repeated == 2
    np.testing.assert_array_equal(matrix.indptr, [0, 2, 5])
    np.testing.assert_array_equal(matrix.indices, [0, 0, 0, 2, 2])
    np.testing.assert_array_equal(matrix.data, [2.0, 5.0, 3.0, 1.0, 4.0])


def test_empty_rows_and_an_empty_matrix():
    matrix, repeated = build_csr(np.array([3], dtype=np.int32), np.array([1], dtype=np.int32),
                                 np.array([2.5], dtype=np.float32), (5, 2))
    np.testing.assert_array_equal(matrix.indptr, [0, 0, 0, 0, 1, 1])
    assert repeated == 0
    empty, _ = build_csr(np.empty(0, np.int32), np.empty(0, np.int32), np.empty(0, np.float32),
                         (2, 2))
    assert empty.nnz == 0 and empty.shape == (2, 2)


def test_repeated_pairs_counted_alike_for_grouped_and_shuffled_rows():
    from alsmf.data.csr import count_repeated_pairs

    rng = np.random.default_rng(1)
    rows = np.sort(rng.integers(0, 40, 500)).astype(np.int32)  # grouped by row
    cols = rng.integers(0, 30, 500).astype(np.int32)
    expected = len(rows) - len(set(zip(rows.tolist(), cols.tolist())))
    assert expected > 0
    assert count_repeated_pairs(rows, cols, (40, 30)) == expected
    order = rng.permutation(500)
    assert count_repeated_pairs(rows[order], cols[order], (40, 30)) == expected


def test_repeated_pairs_are_counted_in_grouped_and_shuffled_input():
    """Both paths of count_repeated_pairs against a count by np.unique."""
    rng = np.random.default_rng(1)
    rows = rng.integers(0, 50, 3000).astype(np.int32)
    cols = rng.integers(0, 40, 3000).astype(np.int32)
    expected = len(rows) - len(np.unique(rows.astype(np.int64) * 40 + cols))
    assert expected > 0
    order = np.argsort(rows, kind="stable")
    assert count_repeated_pairs(rows[order], cols[order], (50, 40)) == expected  # grouped
    assert count_repeated_pairs(rows, cols, (50, 40)) == expected  # shuffled
    unique = np.unique(rows.astype(np.int64) * 40 + cols)
    assert count_repeated_pairs((unique // 40).astype(np.int32)[::-1].copy(),
                                (unique % 40).astype(np.int32)[::-1].copy(), (50, 40)) == 0


@pytest.mark.parametrize("chunks", [1, 2, 3, 7, 64])
def test_grouped_rows_are_checked_in_parallel_ranges_whatever_the_cuts(chunks):
    """Runs of one row cross the ranges' cuts, and one long run spans several ranges: each
    repeat is counted once; a row out of order anywhere, even in the last range, is seen."""
    from alsmf.data.csr import _repeats_in_runs

    rng = np.random.default_rng(3)
    rows = np.repeat(np.arange(6, dtype=np.int32), [3, 40, 1, 200, 2, 9])
    cols = rng.integers(0, 25, len(rows)).astype(np.int32)
    expected = len(rows) - len(np.unique(rows.astype(np.int64) * 25 + cols))
    assert expected > 0
    assert _repeats_in_runs(rows, cols, 25, chunks) == expected
    unordered = rows.copy()
    unordered[-1] = 0
    assert _repeats_in_runs(unordered, cols, 25, chunks) == -1


def test_row_major_order_is_a_stable_sort_by_row_then_column():
    from alsmf.data.csr import row_major_order

    rng = np.random.default_rng(2)
    rows = rng.integers(0, 30, 2000).astype(np.int32)
    cols = rng.integers(0, 20, 2000).astype(np.int32)  # with repeated pairs
    order = row_major_order(rows, cols, 30)
    np.testing.assert_array_equal(order, np.lexsort((np.arange(2000), cols, rows)))
    assert row_major_order(rows[order], cols[order], 30) is not None  # repeats: not strictly
    pairs = np.unique(rows.astype(np.int64) * 20 + cols)
    assert row_major_order((pairs // 20).astype(np.int32), (pairs % 20).astype(np.int32),
                           30) is None


def test_entries_already_in_row_order_are_not_copied():
    rng = np.random.default_rng(3)
    dense = rng.random((25, 15)) * (rng.random((25, 15)) < 0.4)
    rows, cols = (a.astype(np.int32) for a in np.nonzero(dense))  # row-major, strictly
    values = dense[rows, cols].astype(np.float32)
    matrix, repeated = build_csr(rows, cols, values, (25, 15))
    assert repeated == 0
    assert np.shares_memory(matrix.indices, cols) and np.shares_memory(matrix.data, values)
    expected = sp.csr_matrix(dense.astype(np.float32))
    np.testing.assert_array_equal(matrix.indptr, expected.indptr)
    np.testing.assert_array_equal(matrix.toarray(), expected.toarray())
    swapped, _ = build_csr(rows, cols[::-1].copy(), values, (25, 15))  # not in order: copied
    assert not np.shares_memory(swapped.indices, cols)
