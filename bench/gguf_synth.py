"""Synthetic GGUF files: a real model's header (tokenizer, template, shapes), random weights.

llama.cpp's speed does not depend on the weight values, so a file with the right architecture,
tensor shapes and quantisation types measures what the real one would, where the real weights
cannot be brought (no model hub on the GPU machine). Two uses:

    python bench/gguf_synth.py header SRC.gguf OUT.hdr        # keep a GGUF's header (few MB)
    python bench/gguf_synth.py clone OUT.hdr MODEL.gguf       # same tensors, random data
    python bench/gguf_synth.py qwen2 OUT.hdr MODEL.gguf --layers 64 --hidden 5120 --ffn 27648 \\
        --heads 40 --kv-heads 8                                # a Qwen2 model of any shape (Q4_K_M)

The GGUF container is simple enough to write directly (header, key/values, tensor infos, aligned
data), and doing so keeps the GPU machine free of extra packages; the `gguf` package's writer
would need the values decoded and re-encoded, which this copies as raw bytes.
Quantised blocks are random bytes whose fp16 scales are overwritten with a small finite value,
so every weight is finite.
"""

from __future__ import annotations

import argparse
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

GGUF_MAGIC = b"GGUF"
_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY, _UINT32, _FLOAT32 = 8, 9, 4, 6

# ggml type -> (weights per block, bytes per block, offsets of fp16 scales inside a block)
BLOCKS: dict[int, tuple[int, int, tuple[int, ...]]] = {
    0: (1, 4, ()),  # F32
    1: (1, 2, ()),  # F16
    2: (32, 18, (0,)),  # Q4_0
    3: (32, 20, (0, 2)),  # Q4_1
    6: (32, 22, (0,)),  # Q5_0
    7: (32, 24, (0, 2)),  # Q5_1
    8: (32, 34, (0,)),  # Q8_0
    10: (256, 84, (80, 82)),  # Q2_K
    11: (256, 110, (108,)),  # Q3_K
    12: (256, 144, (0, 2)),  # Q4_K
    13: (256, 176, (0, 2)),  # Q5_K
    14: (256, 210, (208,)),  # Q6_K
    30: (1, 2, ()),  # BF16
}
F32, Q4_K, Q6_K = 0, 12, 14
SCALE = np.float16(1e-4).tobytes()
POOL_BYTES = 64 << 20


@dataclass
class Tensor:
    """One tensor's name, dimensions (innermost first, as GGUF stores them) and ggml type."""

    name: str
    dims: list[int]
    ggml_type: int

    @property
    def nbytes(self) -> int:
        """Size of the tensor's data."""
        per_block, block_bytes, _ = BLOCKS[self.ggml_type]
        count = 1
        for dim in self.dims:
            count *= dim
        return count // per_block * block_bytes


@dataclass
class Header:
    """A GGUF header: key/values kept as raw bytes (in order) and the tensor infos."""

    version: int
    kvs: dict[str, bytes] = field(default_factory=dict)
    tensors: list[Tensor] = field(default_factory=list)

    @property
    def alignment(self) -> int:
        """`general.alignment`, 32 when absent."""
        raw = self.kvs.get("general.alignment")
        return struct.unpack_from("<I", raw, len(raw) - 4)[0] if raw else 32


def _string(value: str) -> bytes:
    data = value.encode()
    return struct.pack("<Q", len(data)) + data


def kv_string(key: str, value: str) -> bytes:
    """A raw key/value entry holding a string."""
    return _string(key) + struct.pack("<I", _STRING) + _string(value)


def kv_u32(key: str, value: int) -> bytes:
    """A raw key/value entry holding a uint32."""
    return _string(key) + struct.pack("<II", _UINT32, value)


def kv_f32(key: str, value: float) -> bytes:
    """A raw key/value entry holding a float32."""
    return _string(key) + struct.pack("<If", _FLOAT32, value)


def read_header(path: Path, *, limit: int = 256 << 20) -> Header:
    """Parse a GGUF header (from a whole file or only its first bytes)."""
    with path.open("rb") as handle:
        data = handle.read(limit)
    magic, version, n_tensors, n_kv = struct.unpack_from("<4sIQQ", data, 0)
    if magic != GGUF_MAGIC:
        raise SystemExit(f"{path}: not a GGUF file")
    at = 24

    def skip_string(pos: int) -> tuple[str, int]:
        (length,) = struct.unpack_from("<Q", data, pos)
        end = pos + 8 + int(length)
        return data[pos + 8 : end].decode("utf-8", "replace"), end

    header = Header(version)
    for _ in range(n_kv):
        start = at
        key, at = skip_string(at)
        (kind,) = struct.unpack_from("<I", data, at)
        at += 4
        if kind == _STRING:
            _, at = skip_string(at)
        elif kind == _ARRAY:
            item, count = struct.unpack_from("<IQ", data, at)
            at += 12
            if item == _STRING:
                for _ in range(count):
                    _, at = skip_string(at)
            else:
                at += _SCALAR_SIZES[item] * int(count)
        else:
            at += _SCALAR_SIZES[kind]
        header.kvs[key] = data[start:at]
    for _ in range(n_tensors):
        name, at = skip_string(at)
        (n_dims,) = struct.unpack_from("<I", data, at)
        dims = list(struct.unpack_from(f"<{n_dims}Q", data, at + 4))
        at += 4 + 8 * n_dims
        (ggml_type,) = struct.unpack_from("<I", data, at)
        at += 4 + 8  # type, then the offset, which is recomputed on writing
        header.tensors.append(Tensor(name, dims, ggml_type))
    return header


def save_header(header: Header, path: Path) -> None:
    """Keep only the header (no tensor data) in a small file that `read_header` reads back."""
    path.write_bytes(_header_bytes(header, pad=False))


def _header_bytes(header: Header, *, pad: bool) -> bytes:
    counts = (len(header.tensors), len(header.kvs))
    parts = [struct.pack("<4sIQQ", GGUF_MAGIC, header.version, *counts)]
    parts += header.kvs.values()
    offset = 0
    for tensor in header.tensors:
        parts.append(_string(tensor.name) + struct.pack("<I", len(tensor.dims)))
        parts.append(struct.pack(f"<{len(tensor.dims)}Q", *tensor.dims))
        parts.append(struct.pack("<IQ", tensor.ggml_type, offset))
        offset += -(-tensor.nbytes // header.alignment) * header.alignment
    raw = b"".join(parts)
    if pad:
        raw += b"\0" * (-len(raw) % header.alignment)
    return raw


def _pool(ggml_type: int, rng: np.random.Generator) -> bytes:
    """Random bytes, a whole number of blocks, with every fp16 scale finite."""
    _, block_bytes, scale_offsets = BLOCKS[ggml_type]
    blocks = POOL_BYTES // block_bytes
    if ggml_type == F32:
        return rng.uniform(-0.05, 0.05, blocks).astype(np.float32).tobytes()
    if not scale_offsets:  # F16 / BF16: small values, whatever the bit layout reads as
        return (rng.uniform(-0.05, 0.05, blocks).astype(np.float16)).tobytes()
    pool = np.frombuffer(rng.bytes(blocks * block_bytes), dtype=np.uint8).reshape(blocks, -1).copy()
    scale = np.frombuffer(SCALE, dtype=np.uint8)
    for offset in scale_offsets:
        pool[:, offset : offset + 2] = scale
    return pool.tobytes()


def write_random(header: Header, path: Path, *, seed: int = 0) -> int:
    """Write `header` and random tensor data to `path`; returns the file's size."""
    rng = np.random.default_rng(seed)
    pools: dict[int, bytes] = {}
    ones = np.ones(POOL_BYTES // 4, dtype=np.float32).tobytes()
    with path.open("wb") as out:
        out.write(_header_bytes(header, pad=True))
        for tensor in header.tensors:
            if tensor.ggml_type not in BLOCKS:
                raise SystemExit(f"{tensor.name}: ggml type {tensor.ggml_type} is not supported")
            is_norm = tensor.ggml_type == F32 and "norm" in tensor.name
            if tensor.ggml_type not in pools:
                pools[tensor.ggml_type] = _pool(tensor.ggml_type, rng)
            pool = ones if is_norm else pools[tensor.ggml_type]
            left = tensor.nbytes
            while left:
                chunk = min(left, len(pool))
                out.write(memoryview(pool)[:chunk])
                left -= chunk
            out.write(b"\0" * (-tensor.nbytes % header.alignment))
        return out.tell()


def qwen2_header(
    tokenizer: Header,
    *,
    layers: int,
    hidden: int,
    ffn: int,
    heads: int,
    kv_heads: int,
    context: int = 131072,
    name: str = "synthetic qwen2",
) -> Header:
    """A Qwen2-architecture header with `tokenizer`'s vocabulary and template, in Q4_K_M's types.

    Q4_K_M (llama.cpp's `llama_model_quantize`): Q4_K everywhere, Q6_K for the output matrix and
    for attn_v / ffn_down in the first and last eighth of the layers and every third between.
    """
    tokens = tokenizer.kvs["tokenizer.ggml.tokens"]
    (n_vocab,) = struct.unpack_from("<Q", tokens, len(_string("tokenizer.ggml.tokens")) + 8)
    header = Header(3)
    for entry in (
        kv_string("general.architecture", "qwen2"),
        kv_string("general.name", name),
        kv_u32("general.file_type", 15),  # LLAMA_FTYPE_MOSTLY_Q4_K_M
        kv_u32("qwen2.context_length", context),
        kv_u32("qwen2.embedding_length", hidden),
        kv_u32("qwen2.feed_forward_length", ffn),
        kv_u32("qwen2.block_count", layers),
        kv_u32("qwen2.attention.head_count", heads),
        kv_u32("qwen2.attention.head_count_kv", kv_heads),
        kv_f32("qwen2.rope.freq_base", 1_000_000.0),
        kv_f32("qwen2.attention.layer_norm_rms_epsilon", 1e-5),
    ):
        (length,) = struct.unpack_from("<Q", entry, 0)
        header.kvs[entry[8 : 8 + length].decode()] = entry
    header.kvs.update({k: v for k, v in tokenizer.kvs.items() if k.startswith("tokenizer.")})
    kv_dim = hidden // heads * kv_heads
    header.tensors += [
        Tensor("token_embd.weight", [hidden, n_vocab], Q4_K),
        Tensor("output_norm.weight", [hidden], F32),
        Tensor("output.weight", [hidden, n_vocab], Q6_K),
    ]
    for i in range(layers):
        more_bits = i < layers // 8 or i >= 7 * layers // 8 or (i - layers // 8) % 3 == 2
        wide = Q6_K if more_bits else Q4_K
        header.tensors += [
            Tensor(f"blk.{i}.attn_norm.weight", [hidden], F32),
            Tensor(f"blk.{i}.attn_q.weight", [hidden, hidden], Q4_K),
            Tensor(f"blk.{i}.attn_q.bias", [hidden], F32),
            Tensor(f"blk.{i}.attn_k.weight", [hidden, kv_dim], Q4_K),
            Tensor(f"blk.{i}.attn_k.bias", [kv_dim], F32),
            Tensor(f"blk.{i}.attn_v.weight", [hidden, kv_dim], wide),
            Tensor(f"blk.{i}.attn_v.bias", [kv_dim], F32),
            Tensor(f"blk.{i}.attn_output.weight", [hidden, hidden], Q4_K),
            Tensor(f"blk.{i}.ffn_norm.weight", [hidden], F32),
            Tensor(f"blk.{i}.ffn_gate.weight", [hidden, ffn], Q4_K),
            Tensor(f"blk.{i}.ffn_up.weight", [hidden, ffn], Q4_K),
            Tensor(f"blk.{i}.ffn_down.weight", [ffn, hidden], wide),
        ]
    return header


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    keep = sub.add_parser("header", help="keep a GGUF's header")
    keep.add_argument("source", type=Path)
    keep.add_argument("out", type=Path)
    keep.add_argument("--no-tensors", action="store_true", help="keep the key/values only")
    clone = sub.add_parser("clone", help="a header's tensors with random data")
    clone.add_argument("header", type=Path)
    clone.add_argument("out", type=Path)
    shaped = sub.add_parser("qwen2", help="a Qwen2 model of any shape, Q4_K_M types")
    shaped.add_argument("header", type=Path, help="where the tokenizer and template come from")
    shaped.add_argument("out", type=Path)
    for flag, default in (
        ("--layers", 64),
        ("--hidden", 5120),
        ("--ffn", 27648),
        ("--heads", 40),
        ("--kv-heads", 8),
    ):
        shaped.add_argument(flag, type=int, default=default)
    args = parser.parse_args()
    if args.command == "header":
        header = read_header(args.source)
        if args.no_tensors:
            header.tensors = []
        save_header(header, args.out)
    elif args.command == "clone":
        size = write_random(read_header(args.header), args.out)
        print(f"{args.out}: {size / 2**30:.2f} GiB", file=sys.stderr)
    else:
        header = qwen2_header(
            read_header(args.header),
            layers=args.layers,
            hidden=args.hidden,
            ffn=args.ffn,
            heads=args.heads,
            kv_heads=args.kv_heads,
        )
        size = write_random(header, args.out)
        print(f"{args.out}: {size / 2**30:.2f} GiB", file=sys.stderr)


if __name__ == "__main__":
    main()
