"""Testing 64 bytes at once, for the fast ratings parser's line count.

Counting the line ends of a block one byte at a time costs a compare and an add per byte, in
64-bit lanes. Here one unaligned 64-byte load is compared with the byte as a vector (the
compiler emits two 32-byte compares on AVX2 machines, more narrow ones elsewhere), the 64
results are gathered into one bit each (a "move mask" instruction) and the bits are counted
with one population count.

The loads are unchecked: the caller guarantees that :data:`MASK_BYTES` bytes from any
position it passes can be read.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

MASK_BYTES = 64
"""Bytes compared by one :func:`byte_mask`, one bit each."""


@intrinsic
def byte_mask(typingctx, buffer, position, byte):
    """Bit ``j`` set where ``buffer[position + j]`` equals ``byte``, for j < 64.

    One unaligned 64-byte load and one vector compare, without bounds checks.
    """
    if not (isinstance(buffer, types.Array) and buffer.dtype == types.uint8):
        return None
    signature = types.uint64(buffer, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, value=args[0])
        address = builder.gep(array.data, [args[1]])
        vector = ir.VectorType(ir.IntType(8), MASK_BYTES)
        chunk = builder.load(builder.bitcast(address, vector.as_pointer()), align=1)
        lane = builder.trunc(args[2], vector.element)
        first = builder.insert_element(ir.Constant(vector, None), lane,
                                       ir.Constant(ir.IntType(32), 0))
        every_lane = ir.Constant(ir.VectorType(ir.IntType(32), MASK_BYTES), [0] * MASK_BYTES)
        splat = builder.shuffle_vector(first, ir.Constant(vector, None), every_lane)
        return builder.bitcast(builder.icmp_unsigned("==", chunk, splat),
                               ir.IntType(MASK_BYTES))

    return signature, codegen


@intrinsic
def population_count(typingctx, word):
    """Set bits of a uint64: one instruction."""
    if word != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return types.uint64(types.uint64), codegen
