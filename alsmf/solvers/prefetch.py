"""A software prefetch hint for numba kernels: ``prefetch(array, row, column)``.

The ALS half-steps read the fixed side's factor rows in the order of a row's ratings, which is
scattered over a matrix larger than the CPU caches (ML-20M's user factors: 35 MB). The
hardware cannot guess those addresses, so every row costs a full memory latency; asking for
the row a few ratings ahead lets those loads overlap (measured: the gather of the item
half-step at ML-20M shape went from 1.8 to 1.1 CPU-seconds). numba has no prefetch function,
so this exposes LLVM's ``llvm.prefetch`` intrinsic; it is only a hint and never faults.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def prefetch(typingctx, array, row, column):
    """Hint that ``array[row, column]`` (2-D) will be read soon; a no-op for the program."""
    if not (isinstance(array, types.Array) and array.ndim == 2
            and isinstance(row, types.Integer) and isinstance(column, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        indices = [context.cast(builder, value, value_type, types.intp)
                   for value, value_type in zip(args[1:], signature.args[1:])]
        pointer = cgutils.get_item_pointer2(
            context, builder, data=view.data, shape=cgutils.unpack_tuple(builder, view.shape),
            strides=cgutils.unpack_tuple(builder, view.strides), layout=array_type.layout,
            inds=indices)
        byte_pointer = ir.IntType(8).as_pointer()
        int32 = ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, int32, int32, int32]),
            "llvm.prefetch.p0i8")
        # read access (0), keep in all cache levels (3), data cache (1)
        builder.call(function, [builder.bitcast(pointer, byte_pointer), ir.Constant(int32, 0),
                                ir.Constant(int32, 3), ir.Constant(int32, 1)])
        return context.get_dummy_value()

    return types.void(array, row, column), codegen
