"""Reading decimal numbers eight bytes at a time, for the fast ratings parser.

A byte-at-a-time parser computes ``value = 10 * value + digit`` and tests for the end of the
number at every byte: a chain of dependent operations and a hard-to-predict branch per digit.
Here the parser loads the eight bytes at a position as one little-endian 64-bit word, finds
how many of them are digits with a few bitwise operations and one trailing-zero count, and
turns those digits into their value with three multiplications (the "SWAR" technique: SIMD
within a register). A field of up to 8 digits costs about as much as one digit did.

The loads are unaligned and unchecked: the caller guarantees that at least
:data:`READ_AHEAD` bytes after any position it passes can be read.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

READ_AHEAD = 16
"""Bytes read from a position by :func:`read_number` (two words)."""

_WORD = np.uint64
_LOW_7_BITS = _WORD(0x7F7F7F7F7F7F7F7F)
_HIGH_BITS = _WORD(0x8080808080808080)
_ASCII_ZEROS = _WORD(0x3030303030303030)
_ABOVE_NINE = _WORD(0x7676767676767676)  # 0x76 + 10 = 0x80: sets the high bit from 10 up
_LOW_4_BITS = _WORD(0x0F0F0F0F0F0F0F0F)
POWERS_OF_TEN = 10 ** np.arange(READ_AHEAD + 1, dtype=np.int64)
"""10**0 .. 10**16: scales a number of up to :data:`READ_AHEAD` digits."""


@intrinsic
def load_word(typingctx, buffer, position):
    """The 8 bytes ``buffer[position:position + 8]`` as a little-endian uint64.

    One unaligned load, without bounds checks (the caller guarantees the bytes exist).
    """
    if not (isinstance(buffer, types.Array) and buffer.dtype == types.uint8):
        return None
    signature = types.uint64(buffer, types.int64)

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, value=args[0])
        address = builder.gep(array.data, [args[1]])
        return builder.load(builder.bitcast(address, ir.IntType(64).as_pointer()), align=1)

    return signature, codegen


@intrinsic
def trailing_zeros(typingctx, word):
    """Trailing zero bits of a uint64 (64 for zero): one instruction."""
    if word != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))

    return types.uint64(types.uint64), codegen


@njit(cache=True, _nrt=False)
def digit_run_length(word: np.uint64) -> int:
    """How many of the word's bytes, from the first, are ASCII digits (0..8).

    Each byte is tested on its own (no carry crosses bytes): after ``xor 0x30`` a digit is
    0..9; adding 0x76 to its low 7 bits sets the high bit from 10 up, and bytes that had the
    high bit set already are kept by the ``or``.
    """
    x = word ^ _ASCII_ZEROS
    not_digit = (((x & _LOW_7_BITS) + _ABOVE_NINE) | x) & _HIGH_BITS
    return np.int64(trailing_zeros(not_digit)) >> 3


@njit(cache=True, _nrt=False)
def digit_run_value(word: np.uint64, length: int) -> int:
    """The value of the first ``length`` (1..8) bytes of the word, all ASCII digits.

    The digits are shifted to the top of the word (the first, most significant, digit
    leads), then adjacent pairs, quads and octets are combined by one multiply-shift each.
    """
    digits = ((word ^ _ASCII_ZEROS) & _LOW_4_BITS) << _WORD(64 - 8 * length)
    digits = ((digits * _WORD(10 * 256 + 1)) >> _WORD(8)) & _WORD(0x00FF00FF00FF00FF)
    digits = ((digits * _WORD(100 * 65536 + 1)) >> _WORD(16)) & _WORD(0x0000FFFF0000FFFF)
    return np.int64((digits * _WORD(10000 * 2**32 + 1)) >> _WORD(32))


@njit(cache=True, _nrt=False)
def read_number(buffer: np.ndarray, position: int) -> tuple[int, int]:
    """(value, digits) of the run of ASCII digits at ``position``, up to 16 digits.

    ``digits`` is 0 when the byte there is not a digit; a run longer than 16 digits is cut at
    16 (the byte after it is then a digit, which the caller refuses as it expects a
    delimiter).
    """
    first = load_word(buffer, position)
    length = digit_run_length(first)
    if length == 0:
        return 0, 0
    if length < 8:
        return digit_run_value(first, length), length
    second = load_word(buffer, position + 8)
    more = digit_run_length(second)
    value = digit_run_value(first, 8)
    if more == 0:
        return value, 8
    return value * POWERS_OF_TEN[more] + digit_run_value(second, more), 8 + more


@njit(cache=True, _nrt=False)
def count_digits(buffer: np.ndarray, position: int) -> int:
    """How many ASCII digits run from ``position``, up to 16: :func:`read_number`'s
    ``digits`` without the value, for a field that is checked but not kept."""
    length = digit_run_length(load_word(buffer, position))
    if length < 8:
        return length
    return 8 + digit_run_length(load_word(buffer, position + 8))
