"""Gradient compression for the wire, as Horovod's ``hvd.Compression``. Pure.

A compressor turns a tensor into what travels (``compress`` returns it and a context)
and back (``decompress``). 16-bit compression halves the bytes on the wire; the sum is
formed in float32 by the reduction operation, and averaging divides *before* the
reduction so that the sum of many large gradients cannot overflow float16.
"""

from __future__ import annotations

from typing import Any

import torch


class NoneCompressor:
    """Send tensors as they are."""

    wire_dtype: torch.dtype | None = None

    @staticmethod
    def compress(tensor: torch.Tensor) -> tuple[torch.Tensor, Any]:
        return tensor, None

    @staticmethod
    def decompress(tensor: torch.Tensor, ctx: Any) -> torch.Tensor:
        return tensor


class _To16:
    wire_dtype: torch.dtype = torch.float16

    @classmethod
    def compress(cls, tensor: torch.Tensor) -> tuple[torch.Tensor, Any]:
        if tensor.dtype.is_floating_point and tensor.dtype != cls.wire_dtype:
            return tensor.to(cls.wire_dtype), tensor.dtype
        return tensor, None

    @staticmethod
    def decompress(tensor: torch.Tensor, ctx: Any) -> torch.Tensor:
        return tensor.to(ctx) if ctx is not None else tensor


class FP16Compressor(_To16):
    """Send floating-point tensors as float16 (range +-65504, 11-bit mantissa)."""

    wire_dtype = torch.float16


class BF16Compressor(_To16):
    """Send floating-point tensors as bfloat16 (float32's range, 8-bit mantissa)."""

    wire_dtype = torch.bfloat16


class Compression:
    """The compressors, by Horovod's names."""

    none = NoneCompressor
    fp16 = FP16Compressor
    bf16 = BF16Compressor
