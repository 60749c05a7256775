"""The numeric kernels against numpy's closed forms."""

import numpy as np
import pytest
import scipy.sparse as sp

from alsmf.solvers import (als_half_step, cg_half_step, conjugate_gradient_row, predict_pairs,
                           solve_row, squared_error)
from alsmf.rowsystem import RowSystem
from alsmf.solvers.gather import UNIT_WEIGHTS
from alsmf.solvers.gram import CHUNK, accumulate_normal_equations
from alsmf.solvers.halfstep import HalfStep
from tests.tolerances import EXACT


def random_spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


@pytest.mark.parametrize("d", [1, 3, 17])
def test_solve_row_matches_numpy_solve(d):
    rng = np.random.default_rng(d)
    gram, precision = random_spd(rng, d), random_spd(rng, d)
    rhs, mean = rng.normal(size=d), rng.normal(size=d)
    scale = 0.7
    expected = np.linalg.solve(gram + scale * precision, rhs + scale * precision @ mean)
    out = np.empty(d)
    work = gram.copy()
    assert solve_row(work, rhs.copy(), precision, mean, scale, out) == 0
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)
    # the Cholesky factor of the regularised matrix is left in place for samplers
    np.testing.assert_allclose(work @ work.T, gram + scale * precision, rtol=1e-10, atol=1e-12)
    assert np.allclose(np.triu(work, 1), 0.0)


def test_solve_row_reports_a_singular_system_and_leaves_output():
    gram = np.zeros((3, 3))
    gram[0, 0] = 1.0  # rank one: not positive definite without a prior
    out = np.full(3, 7.0)
    status = solve_row(gram, np.ones(3), np.eye(3), np.zeros(3), 0.0, out)
    assert status == 2
    assert np.all(out == 7.0)


def closed_form_half_step(matrix, fixed, fixed_bias, mu, with_bias, reg, weighted, reg_bias=None,
                          extra_gram=None, extra_rhs=None, weights=None):
    """Seed 001's normal equations solved row by row with numpy (plus the optional bias λ,
    implicit-feature terms E, e and per-rating weights W of the kernels: Yᵀ W Y, Yᵀ W t)."""
    n_rows, k = matrix.shape[0], fixed.shape[1]
    reg_bias = reg if reg_bias is None else reg_bias
    out = np.zeros((n_rows, k))
    out_bias = np.zeros(n_rows)
    for row in range(n_rows):
        cols = matrix.indices[matrix.indptr[row]:matrix.indptr[row + 1]]
        vals = matrix.data[matrix.indptr[row]:matrix.indptr[row + 1]].astype(np.float64)
        if len(cols) == 0:
            continue
        y = np.hstack([fixed[cols], np.ones((len(cols), 1))]) if with_bias else fixed[cols]
        d = y.shape[1]
        target = vals - mu - fixed_bias[cols]
        weight = len(cols) if weighted else 1
        ridge = np.diag(np.r_[np.full(k, reg), [reg_bias]][:d] * weight)
        w = np.ones(len(cols)) if weights is None else weights[
            matrix.indptr[row]:matrix.indptr[row + 1]]
        lhs, rhs = y.T @ (w[:, None] * y) + ridge, y.T @ (w * target)
        if extra_gram is not None:
            lhs, rhs = lhs + extra_gram[:d, :d], rhs + extra_rhs[row, :d]
        x = np.linalg.solve(lhs, rhs)
        out[row] = x[:k]
        if with_bias:
            out_bias[row] = x[k]
    return out, out_bias


def small_problem(seed, with_bias, dtype=np.float64):
    rng = np.random.default_rng(seed)
    n_rows, n_cols, k = 12, 9, 4
    dense = rng.integers(1, 6, size=(n_rows, n_cols)).astype(np.float32)
    dense[rng.random((n_rows, n_cols)) < 0.5] = 0
    dense[5] = 0  # a row without ratings gets zeros
    matrix = sp.csr_matrix(dense)
    fixed = rng.normal(size=(n_cols, k)).astype(dtype)
    fixed_bias = (rng.normal(size=n_cols) if with_bias else np.zeros(n_cols)).astype(dtype)
    mu = 3.2 if with_bias else 0.0
    z = rng.normal(size=(6, k))
    extra_gram = np.zeros((k + 1, k + 1))
    extra_gram[:k, :k] = 0.5 * z.T @ z  # what the implicit features add: w·ZᵀZ, w·Σ z
    extra_rhs = np.zeros((n_rows, k + 1))
    extra_rhs[:, :k] = rng.normal(size=(n_rows, k))
    return matrix, fixed, fixed_bias, mu, extra_gram, extra_rhs


@pytest.mark.parametrize("n", [0, 1, 7, CHUNK, CHUNK + 1, 3 * CHUNK + 5])
@pytest.mark.parametrize("augmented", [True, False])
def test_normal_equations_match_float64_over_several_chunks(n, augmented):
    """float32 products summed per chunk: within float32 rounding of the float64 sums."""
    rng = np.random.default_rng(n)
    k = 9
    fixed = rng.normal(size=(40, k))
    fixed_bias = rng.normal(size=40)
    columns = rng.integers(0, 40, size=n)
    values = rng.uniform(1, 5, size=n)
    indptr = np.array([0, 0, n])  # row 1 holds the ratings, after an empty row 0
    d = k + 1 if augmented else k
    gram, rhs = np.full((d, d), np.nan), np.full(d, np.nan)
    accumulate_normal_equations(indptr, columns, values, UNIT_WEIGHTS, 1, fixed, fixed_bias, 3.5,
                                gram, rhs)
    y = np.hstack([fixed[columns], np.ones((n, 1))])[:, :d]
    targets = values - 3.5 - fixed_bias[columns]
    scale = max(1.0, float(np.abs(y.T @ y).max()))
    np.testing.assert_allclose(np.tril(gram), np.tril(y.T @ y), rtol=0, atol=1e-6 * scale)
    np.testing.assert_allclose(rhs, y.T @ targets, rtol=0, atol=1e-6 * scale)
    accumulate_normal_equations(indptr, columns, values, UNIT_WEIGHTS, 0, fixed, fixed_bias, 3.5,
                                gram, rhs)
    assert not np.tril(gram).any() and not rhs.any()  # no ratings: G = 0, b = 0


NO_EXTRA = {"extra_gram": None, "extra_rhs": None}


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("weighted", [True, False])
@pytest.mark.parametrize("extra", [False, True])
def test_half_step_equals_closed_form(with_bias, weighted, extra):
    matrix, fixed, fixed_bias, mu, extra_gram, extra_rhs = small_problem(3, with_bias)
    n_rows, k = matrix.shape[0], fixed.shape[1]
    out = np.full((n_rows, k), 9.0)
    out_bias = np.full(n_rows, 9.0) if with_bias else np.zeros(n_rows)
    status = np.zeros(n_rows, dtype=np.int64)
    d = k + 1 if with_bias else k
    prior = np.diag(np.r_[np.full(k, 0.3), [0.05]][:d])
    gram, rhs = (extra_gram[:d, :d], extra_rhs[:, :d]) if extra else (np.zeros((0, 0)),
                                                                      np.zeros((0, d)))
    als_half_step(matrix.indptr, matrix.indices, matrix.data, UNIT_WEIGHTS, fixed, fixed_bias,
                  mu, with_bias, prior, weighted, gram, rhs, out, out_bias, status)
    expected, expected_bias = closed_form_half_step(
        matrix, fixed, fixed_bias, mu, with_bias, 0.3, weighted, 0.05,
        **({"extra_gram": extra_gram, "extra_rhs": extra_rhs} if extra else NO_EXTRA))
    assert not status.any()
    np.testing.assert_allclose(out, expected, **EXACT)
    np.testing.assert_allclose(out_bias, expected_bias, **EXACT)
    assert np.all(out[5] == 0)


def cg_row_problem(rng, n, k, bias_weight):
    block = rng.normal(size=(n, k)).astype(np.float32)
    targets = rng.normal(size=n).astype(np.float32)
    y = np.hstack([block, np.full((n, 1), bias_weight)]).astype(np.float64)
    ridge = np.r_[np.full(k, 0.5), [0.2]].astype(np.float32)
    return block, targets, y, ridge


@pytest.mark.parametrize("n", [1, 4, 7, 50])
@pytest.mark.parametrize("bias_weight", [1.0, 0.0])
@pytest.mark.parametrize("extra", [False, True])
def test_conjugate_gradient_row_converges_to_numpy_solve(n, bias_weight, extra):
    """With d steps CG is exact in exact arithmetic; float32 leaves ~1e-5 relative error."""
    rng = np.random.default_rng(n)
    k = 6
    block, targets, y, ridge = cg_row_problem(rng, n, k, bias_weight)
    gram = np.zeros((0, 0), dtype=np.float32)
    rhs = np.zeros(k + 1, dtype=np.float32)
    if extra:
        z = rng.normal(size=(4, k))
        gram = np.zeros((k + 1, k + 1), dtype=np.float32)
        gram[:k, :k] = z.T @ z
        rhs[:k] = rng.normal(size=k)
    lhs = y.T @ y + np.diag(ridge.astype(np.float64)) + (gram if extra else 0)
    expected = np.linalg.solve(lhs, y.T @ targets + (rhs if extra else 0))
    x = rng.normal(size=k + 1).astype(np.float32)  # any warm start
    if bias_weight == 0.0:
        x[k] = 0.0  # without biases the bias entry starts and stays at zero
        expected[k] = 0.0
    conjugate_gradient_row(block, targets, n, np.float32(bias_weight), ridge, gram, rhs, x,
                           3 * (k + 1))
    np.testing.assert_allclose(x, expected, rtol=1e-4, atol=1e-5)
    if bias_weight == 0.0:
        assert x[k] == 0.0


def test_conjugate_gradient_steps_only_lower_the_row_objective():
    rng = np.random.default_rng(0)
    block, targets, y, ridge = cg_row_problem(rng, 30, 8, 1.0)

    def row_objective(x):
        return np.sum((targets - y @ x) ** 2) + x @ (ridge * x)

    x = np.zeros(9, dtype=np.float32)
    no_gram, no_rhs = np.zeros((0, 0), np.float32), np.zeros(0, np.float32)  # no implicit terms
    values = [row_objective(x.astype(np.float64))]
    for _ in range(6):
        conjugate_gradient_row(block, targets, 30, np.float32(1.0), ridge, no_gram, no_rhs, x, 1)
        values.append(row_objective(x.astype(np.float64)))
    assert all(b <= a * (1 + 1e-6) for a, b in zip(values, values[1:])), values
    best = row_objective(np.linalg.solve(y.T @ y + np.diag(ridge.astype(float)), y.T @ targets))
    assert values[-1] - best < 0.01 * (values[0] - best)  # restarted steps still converge


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("weighted", [True, False])
@pytest.mark.parametrize("extra", [False, True])
def test_cg_half_step_with_enough_steps_equals_closed_form(with_bias, weighted, extra):
    matrix, fixed, fixed_bias, mu, extra_gram, extra_rhs = small_problem(4, with_bias,
                                                                        np.float32)
    n_rows, k = matrix.shape[0], fixed.shape[1]
    out = np.full((n_rows, k), 0.5, dtype=np.float32)
    out_bias = np.zeros(n_rows, dtype=np.float32)
    gram, rhs = (extra_gram, extra_rhs) if extra else (np.zeros((0, 0)), np.zeros((0, k + 1)))
    cg_half_step(matrix.indptr, matrix.indices, matrix.data, UNIT_WEIGHTS, fixed, fixed_bias,
                 mu, with_bias, 0.3, 0.05, weighted, 20, gram, rhs, out, out_bias)
    expected, expected_bias = closed_form_half_step(
        matrix, fixed.astype(np.float64), fixed_bias.astype(np.float64), mu, with_bias, 0.3,
        weighted, 0.05, **({"extra_gram": extra_gram, "extra_rhs": extra_rhs} if extra
                           else NO_EXTRA))
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out_bias, expected_bias, rtol=1e-4, atol=1e-4)
    assert np.all(out[5] == 0)


def test_predict_pairs_scores_and_fallback_for_unknown():
    p = np.array([[1.0, 2.0], [0.5, -1.0]])
    q = np.array([[3.0, 1.0], [2.0, 2.0]])
    bu, bi = np.array([0.1, -0.2]), np.array([0.3, 0.4])
    users = np.array([0, 1, -1, 1, -1])
    items = np.array([1, 0, 0, -1, -1])
    scores = predict_pairs(users, items, p, q, bu, bi, 3.0)
    expected = [3.0 + 0.1 + 0.4 + 6.0, 3.0 - 0.2 + 0.3 + 0.5, 3.0 + 0.3, 3.0 - 0.2, 3.0]
    np.testing.assert_allclose(scores, expected)
    values = np.array(expected) + np.array([1.0, 0.0, -2.0, 0.0, 0.5])
    known = slice(0, 2)  # the pairs with a known user and item, as a CSR by user
    matrix = sp.csr_matrix((values[known], (users[known], items[known])), shape=(2, 2))
    assert squared_error(matrix.indptr, matrix.indices, matrix.data, p, q, bu, bi, 3.0) \
        == pytest.approx(1.0)


def rating_weights(matrix, seed):
    """Weights in 0.2 .. 5 per stored rating, as implicit-feedback confidences spread."""
    return np.random.default_rng(seed).uniform(0.2, 5.0, size=matrix.nnz)


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("extra", [False, True])
def test_weighted_half_step_equals_the_weighted_closed_form(with_bias, extra):
    """Each row minimises Σ w (t − y·x)² + ridge: (Yᵀ W Y + ridge + E) x = Yᵀ W t + e."""
    matrix, fixed, fixed_bias, mu, extra_gram, extra_rhs = small_problem(5, with_bias)
    weights = rating_weights(matrix, 5)
    n_rows, k = matrix.shape[0], fixed.shape[1]
    out, out_bias = np.full((n_rows, k), 9.0), np.zeros(n_rows)
    status = np.zeros(n_rows, dtype=np.int64)
    d = k + 1 if with_bias else k
    prior = np.diag(np.r_[np.full(k, 0.3), [0.05]][:d])
    gram, rhs = (extra_gram[:d, :d], extra_rhs[:, :d]) if extra else (np.zeros((0, 0)),
                                                                      np.zeros((0, d)))
    als_half_step(matrix.indptr, matrix.indices, matrix.data, weights, fixed, fixed_bias, mu,
                  with_bias, prior, False, gram, rhs, out, out_bias, status)
    expected, expected_bias = closed_form_half_step(
        matrix, fixed, fixed_bias, mu, with_bias, 0.3, False, 0.05, weights=weights,
        **({"extra_gram": extra_gram, "extra_rhs": extra_rhs} if extra else NO_EXTRA))
    assert not status.any()
    np.testing.assert_allclose(out, expected, **EXACT)
    np.testing.assert_allclose(out_bias, expected_bias, **EXACT)
    unweighted, _ = closed_form_half_step(matrix, fixed, fixed_bias, mu, with_bias, 0.3, False,
                                          0.05)
    assert np.abs(expected - unweighted).max() > 0.01  # the weights matter here


@pytest.mark.parametrize("extra", [False, True])
def test_weighted_cg_half_step_with_enough_steps_equals_the_weighted_closed_form(extra):
    matrix, fixed, fixed_bias, mu, extra_gram, extra_rhs = small_problem(6, False, np.float32)
    weights = rating_weights(matrix, 6).astype(np.float32)
    n_rows, k = matrix.shape[0], fixed.shape[1]
    out, out_bias = np.full((n_rows, k), 0.5, dtype=np.float32), np.zeros(n_rows, np.float32)
    gram, rhs = (extra_gram, extra_rhs) if extra else (np.zeros((0, 0)), np.zeros((0, k + 1)))
    cg_half_step(matrix.indptr, matrix.indices, matrix.data, weights, fixed, fixed_bias, mu,
                 False, 0.3, 0.0, False, 20, gram, rhs, out, out_bias)
    expected, _ = closed_form_half_step(
        matrix, fixed.astype(np.float64), fixed_bias.astype(np.float64), mu, False, 0.3, False,
        weights=weights.astype(np.float64),
        **({"extra_gram": extra_gram, "extra_rhs": extra_rhs} if extra else NO_EXTRA))
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    assert np.all(out_bias == 0) and np.all(out[5] == 0)


def test_the_half_step_checks_its_weights():
    matrix, fixed, fixed_bias, mu, _, _ = small_problem(7, True)
    out, out_bias = np.zeros((matrix.shape[0], fixed.shape[1])), np.zeros(matrix.shape[0])
    step = HalfStep(RowSystem(reg=0.3, reg_bias=0.1, weighted_reg=False, biases=True), "cg")
    arguments = (matrix.indptr, matrix.indices, matrix.data, fixed, fixed_bias, mu, out,
                 out_bias)
    with pytest.raises(ValueError, match="3 weights for 5[0-9] ratings"):
        step.exact().run(*arguments, weights=np.ones(3))
    with pytest.raises(ValueError, match="CG solver weighs ratings only in a system without"):
        step.run(*arguments, weights=rating_weights(matrix, 7))


def test_weighted_squared_error_weighs_each_residual():
    p, q = np.array([[1.0, 2.0], [0.5, -1.0]]), np.array([[3.0, 1.0], [2.0, 2.0]])
    matrix = sp.csr_matrix(np.array([[6.0, 5.0], [0.0, -3.0]]))  # P Qᵀ = [[5, 6], [0.5, -1]]
    zeros = np.zeros(2)
    weights = np.array([2.0, 3.0, 4.0])
    assert squared_error(matrix.indptr, matrix.indices, matrix.data, p, q, zeros, zeros, 0.0,
                         weights) == pytest.approx(2.0 * 1 + 3.0 * 1 + 4.0 * 4)
