"""Arrays in: validation shared by every measure, and the few operations numpy and torch spell differently.

Measures that support it keep the input in its working precision, float32 (complex64) for float32-or-
narrower input, float64 (complex128) for everything else, and compute where it lives: numpy arrays and
torch tensors on the CPU with numpy (a zero-copy view: numpy's BLAS forms Gram matrices by a symmetric
rank-k update, twice as fast as torch's general product), tensors on an accelerator with torch there.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .threads import parallel_map, worth_splitting

Array = Any  # numpy.ndarray or torch.Tensor

#: Whether torch tensors on the CPU are computed by numpy (tests set False to run the torch path on the CPU).
CPU_TENSORS_AS_NUMPY = True


def is_torch(x) -> bool:
    """Whether `x` is a torch.Tensor (checked without importing torch)."""
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def is_complex(x: Array) -> bool:
    """Whether `x` (numpy or torch) holds complex numbers."""
    return x.is_complex() if is_torch(x) else np.iscomplexobj(x)


def as_array(x, name: str = "x", ndim: int = 2, native: bool = False) -> Array:
    """`x` (numpy array or torch tensor, any device) validated: finite, `ndim` axes, samples first, some variance.

    `native=False`: a float64 (complex128) numpy array. `native=True`: kept in its library and on its device,
    in its working precision (module docstring).
    """
    if is_torch(x):
        x = working(x.detach())
        if not native or (CPU_TENSORS_AS_NUMPY and x.device.type == "cpu"):
            x = x.cpu().resolve_conj().resolve_neg().numpy()
    else:
        x = np.asarray(x)
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
            raise ValueError(f"{name} must hold numbers, got dtype {x.dtype}")
    if x.ndim != ndim:
        layout = "(n_samples, n_features)" if ndim == 2 else "(n_samples, channels, height, width)"
        raise ValueError(f"{name} must be a {ndim}-D array {layout}, got shape {tuple(x.shape)}")
    x = working(x) if native else x.astype(np.complex128 if np.iscomplexobj(x) else np.float64, copy=False)
    if not bool(x.sum().isfinite() if is_torch(x) else np.isfinite(x.sum())):  # one pass when all is well
        bad = ~x.isfinite() if is_torch(x) else ~np.isfinite(x)
        if bad.any():  # else only the sum overflowed
            size = bad.numel() if is_torch(bad) else bad.size
            raise ValueError(f"{name} contains NaN or Inf ({int(bad.sum())} of {size} entries)")
    if x.shape[0] < 2:
        raise ValueError(f"{name} has {x.shape[0]} sample(s); at least 2 are needed")
    if min(x.shape[1:]) == 0:
        raise ValueError(f"{name} has no features: shape {tuple(x.shape)}")
    if not (bool((x[1] != x[0]).any()) or bool((x != x[:1]).any())):
        raise ValueError(f"{name} has no variance: every feature is constant over the samples")
    return x


def as_pair(x, y, ndim: int = 2, native: bool = False) -> tuple[Array, Array]:
    """Both layers validated (see `as_array`), with the same number of samples; `native`: also `unify`-ed."""
    x, y = parallel_map(lambda a: as_array(*a, ndim, native), ((x, "x"), (y, "y")), single_blas=False,
                        threads=worth_splitting(x, y))  # one pass over the data per core
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must hold the same samples: x has {x.shape[0]} samples, y has {y.shape[0]}"
        )
    return (*unify(x, y),) if native else (x, y)


def warn_if_saturated(n: int, dim_x: int, dim_y: int) -> None:
    """Warn when two layers of `dim_x` and `dim_y` dimensions span more than their n centred samples can,
    which forces some canonical correlations to 1."""
    rank_x, rank_y = min(dim_x, n - 1), min(dim_y, n - 1)  # centring leaves n - 1 dimensions
    forced = min(rank_x + rank_y - (n - 1), rank_x, rank_y)
    if forced > 0:
        which = "1 canonical correlation is" if forced == 1 else f"{forced} canonical correlations are"
        warnings.warn(
            f"{n} samples for layers of {dim_x} and {dim_y} dimensions: {which} 1 whatever the data (fewer "
            "samples than features: together the layers span more dimensions than the samples can); use more "
            "samples or reduce the layers first (svcca)",
            RuntimeWarning,
            stacklevel=3,
        )


#: Layers whose largest magnitude lies outside [2^-e, 2^e] are rescaled before their squares are formed (Gram
#: matrices, distances), which would otherwise overflow or underflow; e = 64 in double precision, 32 in single,
#: whose largest number is 2^128: squares of 2^32 summed over up to 2^60 samples stay finite.
SAFE_EXPONENT = 64
SAFE_EXPONENT_SINGLE = 32


def unit_scaled(x: Array) -> tuple[Array, float]:
    """`x` times a power of two bringing its largest magnitude near 1 (exact: only exponents change), and that
    factor; `x` itself and 1.0 when its magnitude is already safe. Every measure is invariant to the scale."""
    top = float(abs(x).max())
    safe = SAFE_EXPONENT_SINGLE if str(x.dtype).endswith(("float32", "complex64")) else SAFE_EXPONENT
    if top == 0 or 2.0**-safe <= top <= 2.0**safe:
        return x, 1.0
    factor = 2.0 ** -np.frexp(top)[1]
    return x * factor, factor


def working(x: Array) -> Array:
    """`x` in its working precision: float32/complex64 if it is that or narrower, else float64/complex128."""
    if is_torch(x):
        import torch

        if x.is_complex():
            return x if x.dtype in (torch.complex64, torch.complex128) else x.to(torch.complex64)
        if x.is_floating_point() and x.dtype != torch.float64:
            return x.to(torch.float32)
        return x.to(torch.float64)
    if np.iscomplexobj(x):
        return x.astype(np.complex64 if x.dtype == np.complex64 else np.complex128, copy=False)
    if np.issubdtype(x.dtype, np.floating) and x.dtype.itemsize <= 4:
        return x.astype(np.float32, copy=False)
    return x.astype(np.float64, copy=False)


def is_single(x: Array) -> bool:
    """Whether `x` works in single precision (float32 or complex64)."""
    if is_torch(x):
        import torch

        return x.dtype in (torch.float32, torch.complex64)
    return x.dtype in (np.float32, np.complex64)


def eps(x: Array) -> float:
    """Machine epsilon of `x`'s working precision."""
    return float(np.finfo(np.float32 if is_single(x) else np.float64).eps)


def to_numpy(a: Array) -> np.ndarray:
    """`a` as a float64 (complex128) numpy array, fetched from its device."""
    if is_torch(a):
        a = a.detach().cpu().numpy()
    return np.asarray(a).astype(np.complex128 if np.iscomplexobj(a) else np.float64, copy=False)


def as_tensor(a: Array):
    """`a` as a torch tensor: a tensor as it is, a numpy array sharing its memory (a copy if it is read-only,
    which torch would otherwise warn about and could write to, or not C-contiguous)."""
    import torch

    if is_torch(a):
        return a
    a = np.asarray(a)
    return torch.from_numpy(a if a.flags.writeable and a.flags.c_contiguous else a.copy())


def like(a: Array, ref: Array) -> Array:
    """`a` (numpy, or the library of `ref`) in `ref`'s library, device and dtype."""
    if is_torch(ref):
        return as_tensor(a).to(device=ref.device, dtype=ref.dtype)
    return np.asarray(a).astype(ref.dtype, copy=False)


def unify(*arrays: Array) -> list[Array]:
    """Validated arrays in one library, device and precision: torch if any is torch, single only if all are."""
    single = all(is_single(a) for a in arrays)
    tensors = [a for a in arrays if is_torch(a)]
    if not tensors:
        return [a.astype(_dtype(np, np.iscomplexobj(a), single), copy=False) for a in arrays]
    import torch

    devices = {str(t.device) for t in tensors}
    if len(devices) > 1:
        raise ValueError(f"the layers are on different devices: {sorted(devices)}; move them to one")
    out = [as_tensor(a).to(tensors[0].device) for a in arrays]
    return [a.to(_dtype(torch, a.is_complex(), single)) for a in out]


def _dtype(lib, complex_: bool, single: bool):
    return getattr(lib, ("complex" if complex_ else "float") + str((32 if single else 64) * (2 if complex_ else 1)))


def mean64(x: Array, axis: int = -2) -> Array:
    """Mean over `axis`, accumulated in float64 (complex128), in `x`'s library and device."""
    if is_torch(x):
        import torch

        return x.mean(axis, dtype=torch.complex128 if x.is_complex() else torch.float64)
    return x.mean(axis, dtype=np.complex128 if np.iscomplexobj(x) else np.float64)


def cross_product(a: Array, b: Array, wide: bool = False) -> Array:
    """`aᴴ @ b` over the samples axis (-2): (..., n, d_a), (..., n, d_b) -> (..., d_a, d_b).

    `wide=True`: single-precision input is accumulated in double, converting a few rows at a time (memory
    stays single-sized). Complex numpy arrays are multiplied as real views (real and imaginary parts
    interleaved), so no conjugated copy of `a` is made and a Gram matrix (`b is a`) keeps the symmetric product.
    """
    if wide and is_single(a):
        batch = int(np.prod(a.shape[:-2], dtype=np.int64))
        step = max(1, (1 << 22) // (batch * (a.shape[-1] + b.shape[-1])))  # ~32 MiB of doubles per chunk
        total = 0
        for start in range(0, a.shape[-2], step):
            rows = slice(start, start + step)
            part = _double(a[..., rows, :])
            total = total + cross_product(part, part if b is a else _double(b[..., rows, :]))
        return total
    contiguous = not is_torch(a) and all(t.strides[-1] == t.itemsize for t in (a, b))
    if not (contiguous and np.iscomplexobj(a) and a.dtype == b.dtype):
        return herm(a) @ b
    real = np.float32 if a.dtype == np.complex64 else np.float64
    p = a.view(real).mT @ b.view(real)
    return (p[..., ::2, ::2] + p[..., 1::2, 1::2]) + 1j * (p[..., ::2, 1::2] - p[..., 1::2, ::2])


def _double(a: Array) -> Array:
    """`a` in double precision (float64 or complex128), in its library and device."""
    if is_torch(a):
        import torch

        return a.to(torch.complex128 if a.is_complex() else torch.float64)
    return a.astype(np.complex128 if np.iscomplexobj(a) else np.float64)


def herm(a: Array) -> Array:
    """Conjugate transpose of the last two axes (a view for real arrays)."""
    t = a.mT
    return t.conj() if is_complex(a) else t


def linalg(a: Array):
    """numpy.linalg or torch.linalg, whichever holds `a`."""
    if is_torch(a):
        import torch

        return torch.linalg
    return np.linalg
