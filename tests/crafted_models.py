"""Crafted model files: each one inconsistency a loader must refuse, with valid digests.

A digest only shows damage: whoever crafts a file recomputes them. So every file here is
either written through :func:`alsmf.store.save_dataclass` after its fields were changed (the
digests are then the real ones), or is a valid file whose JSON header was edited (the
arrays, and their digests, stay as they were), or is a zip that no digest could describe (a
bomb, a forged ``.npy`` header). :func:`crafted_models` yields them all with the fragment the
refusal must name.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.lib import format as npy

from alsmf import store
from alsmf.model import MFModel


class Crafted(NamedTuple):
    """One crafted file: its name, its path and a fragment of the message refusing it."""

    name: str
    path: Path
    problem: str


def crafted_models(model: MFModel, folder: Path) -> Iterator[Crafted]:
    """Every crafted variant of ``model`` (a small trained model with biases, rating values
    and at least 4 factors), written under ``folder``."""
    for name, changes, problem in _field_cases(model):
        yield Crafted(name, store.save_dataclass(replace(model, **changes),
                                                 folder / f"{name}.npz"), problem)
    valid = model.save(folder / "valid.npz")
    for name, edit, problem in _header_cases():
        path = folder / f"{name}.npz"
        _rewrite(valid, path, header=edit)
        yield Crafted(name, path, problem)
    for name, members, problem in _archive_cases():
        path = folder / f"{name}.npz"
        _rewrite(valid, path, members=members)
        yield Crafted(name, path, problem)


def _field_cases(m: MFModel) -> list[tuple[str, dict[str, Any], str]]:
    """(name, changed fields, expected fragment) of each array inconsistency."""
    users, items, k = m.n_users, m.n_items, m.factors
    nnz = len(m.seen_indices)
    first_row = slice(m.seen_indptr[0], m.seen_indptr[1])  # user 0 rated at least 2 items
    assert m.seen_indptr[1] - m.seen_indptr[0] >= 2 and users != items

    def nan_at(array: np.ndarray, index: Any, value: float = np.nan) -> np.ndarray:
        array = array.copy()
        array[index] = value
        return array

    def swap_first_two(array: np.ndarray) -> np.ndarray:
        return np.r_[array[1], array[0], array[2:]].astype(array.dtype)

    def seen_with(index: int, value: int) -> np.ndarray:
        return nan_at(m.seen_indices, index, value)

    def extra(rows: int, columns: int | None = None, value: float = 0.5) -> np.ndarray:
        return np.full((rows,) if columns is None else (rows, columns), value, np.float32)

    draws = {"user_bias_samples": extra(users, 2), "item_bias_samples": extra(items, 2),
             "alpha_samples": extra(2, value=1.5)}
    empty_rows = np.zeros(users + 1, dtype=m.seen_indptr.dtype)
    # a ranking head whose row system is gone
    without_ranking_system = {"ranking_system": None}
    return [
        # factors and biases
        ("swapped_factors", {"user_factors": m.item_factors, "item_factors": m.user_factors},
         f"user_factors has shape ({items}, {k}), not n_users × k = ({users}, {k})"),
        ("k_mismatch", {"item_factors": np.hstack([m.item_factors, m.item_factors[:, :1]])},
         f"item_factors has shape ({items}, {k + 1}), not n_items × k = ({items}, {k})"),
        ("no_factors", {"user_factors": m.user_factors[:, :0].copy(),
                        "item_factors": m.item_factors[:, :0].copy()},
         "user_factors has no columns"),
        ("flat_factors", {"user_factors": m.user_factors.reshape(-1)},
         "user_factors is 1-D, not 2-D"),
        ("integer_factors", {"item_factors": m.item_factors.astype(np.int64)},
         "item_factors has dtype int64, not float32 or float64"),
        ("float16_factors", {"item_factors": m.item_factors.astype(np.float16)},
         "item_factors has dtype float16"),
        ("big_endian_factors", {"user_factors": m.user_factors.astype(">f4")},
         "user_factors has dtype >f4"),
        ("nan_factors", {"user_factors": nan_at(m.user_factors, (3, 1))},
         "user_factors has a value that is not finite (nan at (3, 1))"),
        ("infinite_item_factors", {"item_factors": nan_at(m.item_factors, (0, 0), np.inf)},
         "item_factors has a value that is not finite (inf at (0, 0))"),
        ("short_user_bias", {"user_bias": m.user_bias[:-1]},
         f"user_bias has shape ({users - 1},), not n_users = ({users},)"),
        ("matrix_item_bias", {"item_bias": m.item_bias[:, None]},
         "item_bias is 2-D, not 1-D"),
        ("nan_item_bias", {"item_bias": nan_at(m.item_bias, 2)},
         "item_bias has a value that is not finite"),
        ("nan_global_mean", {"global_mean": float("nan")},
         "the header's global_mean is NaN, not a finite number"),
        ("infinite_fallback_mean", {"fallback_mean": float("inf")},
         "the header's fallback_mean is Infinity, not a finite number"),
        ("biases_unlike_system", {"biases": False},
         "the model's biases flag is False but its row system's is True"),
        # ids
        ("unsorted_user_ids", {"user_ids": swap_first_two(m.user_ids)},
         "user_ids is not sorted without repeats: position 1"),
        ("repeated_item_ids", {"item_ids": np.r_[m.item_ids[:1], m.item_ids[:-1]]},
         "item_ids is not sorted without repeats: position 1"),
        ("float_user_ids", {"user_ids": m.user_ids.astype(np.float64)},
         "user_ids has dtype float64, not integer"),
        ("no_items", {"item_ids": m.item_ids[:0], "item_factors": m.item_factors[:0],
                      "item_bias": m.item_bias[:0], "seen_indptr": empty_rows,
                      "seen_indices": m.seen_indices[:0], "seen_values": m.seen_values[:0]},
         "item_ids is empty"),
        # each user's training ratings
        ("seen_index_past_the_items", {"seen_indices": seen_with(nnz - 1, items)},
         f"seen_indices holds item index {items}, outside 0..{items - 1}"),
        ("negative_seen_index", {"seen_indices": seen_with(0, -1)},
         f"seen_indices holds item index -1, outside 0..{items - 1}"),
        ("unsorted_seen_row", {"seen_indices": np.r_[m.seen_indices[first_row][::-1],
                                                     m.seen_indices[first_row.stop:]]
                               .astype(m.seen_indices.dtype)},
         "seen_indices of user row 0 are not sorted without repeats"),
        ("repeated_seen_item", {"seen_indices": seen_with(1, m.seen_indices[0])},
         "seen_indices of user row 0 are not sorted without repeats"),
        ("float_seen_indices", {"seen_indices": m.seen_indices.astype(np.float64)},
         "seen_indices has dtype float64, not integer"),
        ("short_seen_indptr", {"seen_indptr": m.seen_indptr[:-1]},
         f"seen_indptr has shape ({users},), not n_users + 1 = ({users + 1},)"),
        ("seen_indptr_from_one", {"seen_indptr": m.seen_indptr + 1},
         f"seen_indptr runs from 1 to {nnz + 1}, not from 0 to {nnz}"),
        ("seen_indptr_past_the_end", {"seen_indptr": nan_at(m.seen_indptr, -1, nnz + 50)},
         f"seen_indptr runs from 0 to {nnz + 50}, not from 0 to {nnz}"),
        ("decreasing_seen_indptr", {"seen_indptr": nan_at(m.seen_indptr, 2, 0)},
         "seen_indptr decreases: user row 1 ends before it starts"),
        ("short_seen_values", {"seen_values": m.seen_values[:-1]},
         f"seen_values has shape ({nnz - 1},), not the length of seen_indices = ({nnz},)"),
        ("nan_seen_values", {"seen_values": nan_at(m.seen_values, 5)},
         "seen_values has a value that is not finite"),
        ("integer_seen_values", {"seen_values": m.seen_values.astype(np.int32)},
         "seen_values has dtype int32"),
        ("short_titles", {"item_titles": np.array(["a"] * (items - 1))},
         f"item_titles has shape ({items - 1},), not n_items = ({items},)"),
        # extras
        ("unknown_extra", {"extras": {"kept_secret": extra(items, k)}},
         "extra array 'kept_secret' is not one alsmf knows"),
        ("implicit_factors_of_the_users", {"extras": {"implicit_item_factors": extra(users, k)}},
         f"extra implicit_item_factors has shape ({users}, {k}), not items × k = "
         f"({items}, {k})"),
        ("nan_implicit_factors", {"extras": {"implicit_user_factors": nan_at(
            extra(users, k), (1, 1))}}, "extra implicit_user_factors has a value that is not "
         "finite"),
        ("integer_extra", {"extras": {"implicit_user_factors": np.ones((users, k), int)}},
         "extra implicit_user_factors has dtype int64"),
        ("draws_without_their_partners", {"extras": {"alpha_samples": extra(2)}},
         "extras alpha_samples, item_bias_samples, user_bias_samples come together, but "
         "item_bias_samples is missing"),
        ("draws_of_two_counts", {"extras": draws | {"item_bias_samples": extra(items, 4)}},
         f"extra item_bias_samples has shape ({items}, 4), not items × draws = ({items}, 2)"),
        ("draws_not_dividing_k", {"extras": {"user_bias_samples": extra(users, k + 1),
                                             "item_bias_samples": extra(items, k + 1),
                                             "alpha_samples": extra(k + 1)}},
         f"the factors' {k} columns are not a whole number of factors for each of the "
         f"{k + 1} kept draws"),
        ("zero_noise_precision", {"extras": draws | {"alpha_samples": extra(2, value=0.0)}},
         "extra alpha_samples has a value that is not above 0"),
        ("ranking_factors_without_partner", {"extras": {"ranking_user_factors":
                                                        extra(users, 3)}},
         "ranking_item_factors, ranking_user_factors come together, but ranking_item_factors "
         "is missing"),
        ("ranking_factors_of_two_widths", {"extras": {"ranking_user_factors": extra(users, 3),
                                                      "ranking_item_factors": extra(items, 2)}},
         f"extra ranking_item_factors has shape ({items}, 2), not items × ranking_k = "
         f"({items}, 3)"),
        ("ranking_factors_without_system", {"extras": {
            "ranking_user_factors": extra(users, 3), "ranking_item_factors": extra(items, 3)}}
         | without_ranking_system,
         "the ranking factors come without the ranking row system"),
    ]


def _header_cases() -> list[tuple[str, Callable[[Any], Any], str]]:
    """(name, edit of the parsed header returning the new one, expected fragment); an edit
    returning bytes writes them as the header as they are."""

    def setting(**changes: Any) -> Callable[[dict], dict]:
        return lambda meta: meta | changes

    def without(name: str) -> Callable[[dict], dict]:
        return lambda meta: {key: value for key, value in meta.items() if key != name}

    def first_record(**changes: Any) -> Callable[[dict], dict]:
        return lambda meta: meta | {"history": [meta["history"][0] | changes]}

    def first_record_without(name: str) -> Callable[[dict], dict]:
        return lambda meta: meta | {"history": [
            {key: value for key, value in meta["history"][0].items() if key != name}]}

    return [
        ("header_list", lambda meta: [meta], "not an alsmf model file (format 'list')"),
        ("header_not_json", lambda meta: b"{not json", "the header is not readable JSON"),
        ("header_nested_deep", lambda meta: b"[" * 100_000 + b"]" * 100_000,
         "the header is not readable JSON (RecursionError)"),
        ("header_not_utf8", lambda meta: b"\xff\xfe{}", "the header is not readable JSON"),
        ("version_true", setting(version=True), "model format version True is not supported"),
        ("string_global_mean", setting(global_mean="3.5"),
         "the header's global_mean is \"3.5\", not a finite number"),
        ("flag_global_mean", setting(global_mean=True),
         "the header's global_mean is true, not a finite number"),
        ("huge_global_mean", setting(global_mean=10**400),
         f"the header's global_mean is {str(10**400)[:37]}..., not a finite number"),
        ("missing_fallback_mean", without("fallback_mean"), "the header has no 'fallback_mean'"),
        ("string_biases", setting(biases="yes"), "the header's biases is \"yes\", not true or "
         "false"),
        ("params_list", setting(params=["als"]),
         "the header's params is [\"als\"], not an object"),
        ("missing_params", without("params"), "the header has no 'params'"),
        ("missing_sha256", without("sha256"), "the header has no array digests"),
        ("sha256_list", setting(sha256=["0" * 64]), "the header has no array digests"),
        ("sha256_not_hex", lambda meta: meta | {"sha256": meta["sha256"] | {"item_bias": 7}},
         "the header's digest of 'item_bias' is 7, not 64 hex digits"),
        ("history_object", setting(history={"iteration": 1}),
         "the header's history is {\"iteration\": 1}, not a list"),
        ("history_record_list", setting(history=[[1, 2.0]]),
         "the header's history record 1 is [1, 2.0], not an object"),
        ("history_extra_field", first_record(learning_rate=0.1),
         "the header's history record 1 has fields"),
        ("history_missing_field", first_record_without("objective"),
         "the header's history record 1 has fields"),
        ("history_string_objective", first_record(objective="low"),
         "the header's history record 1's objective is \"low\", not float"),
        ("history_fractional_iteration", first_record(iteration=1.5),
         "the header's history record 1's iteration is 1.5, not int"),
        ("history_flag_iteration", first_record(iteration=True),
         "the header's history record 1's iteration is true, not int"),
        ("system_list", setting(system=[0.1]), "the row system is list, not an object"),
        ("missing_system", without("system"), "the header has no 'system'"),
    ]


def _archive_cases() -> list[tuple[str, dict[str, bytes], str]]:
    """(name, members added to or replacing the valid file's, expected fragment)."""
    return [
        ("npz_bomb", {"state_bomb.npy": _npy_bytes(np.zeros(64 * 2**20, dtype=np.uint8))},
         "member 'state_bomb.npy' unpacks to 64.0 MiB from"),
        ("forged_npy_shape", {"user_bias.npy": _npy_bytes(np.zeros(1), shape=(10**9,))},
         "array 'user_bias' declares shape (1000000000,) of float64 (7.5 GiB) but holds "
         "8 bytes"),
        ("object_array", {"item_bias.npy": _npy_bytes(np.zeros(1), descr="|O")},
         "array 'item_bias' has dtype object, not a plain number"),
        ("not_an_array", {"notes.txt": b"hello"}, "member 'notes.txt' is not an .npy array"),
    ]


def _npy_bytes(array: np.ndarray, **header: Any) -> bytes:
    """``array`` as an ``.npy`` member, its header's fields (shape, descr) replaced by
    ``header``'s whatever the data."""
    out = io.BytesIO()
    npy.write_array_header_1_0(out, npy.header_data_from_array_1_0(array) | header)
    out.write(array.tobytes())
    return out.getvalue()


def _rewrite(source: Path, target: Path, *, header: Callable[[Any], Any] | None = None,
             members: dict[str, bytes] | None = None) -> None:
    """Copy the zip ``source`` to ``target`` with its header edited by ``header`` and the
    ``members`` (raw bytes by member name) replacing or joining its own; big new members
    are deflated, the others stored as ``np.savez`` stores them."""
    members = dict(members or {})
    with zipfile.ZipFile(source) as archive:
        own = {name: archive.read(name) for name in archive.namelist()}
    if header is not None:
        meta = header(json.loads(np.load(io.BytesIO(own["meta.npy"])).tobytes()))
        text = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
        members["meta.npy"] = _npy_bytes(np.frombuffer(text, dtype=np.uint8))
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in (own | members).items():
            method = zipfile.ZIP_DEFLATED if len(data) > 2**20 else zipfile.ZIP_STORED
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=method,
                             compresslevel=9)
