"""Range estimation for int8: the quantization formula itself, and our two observers.

The mapping from a real range [lo, hi] to int8 (quant range [qmin, qmax]) is

    affine:     s = (hi − lo) / (qmax − qmin),   z = qmin − round(lo / s)
    symmetric:  s = max(|lo|, |hi|) / ((qmax − qmin) / 2),   z = 0
    quantize:   q = clamp(round(x / s) + z, qmin, qmax)
    dequantize: x̂ = s · (q − z)

with [lo, hi] first widened to contain 0 so that 0 is exactly representable (padding, ReLU).
The seed paper writes the quantized value as round(x / s) / s — dividing by the step twice —
which is not a quantizer; the formulas above are what XNNPACK's kernels and this module use.

`RangeObserver` estimates [lo, hi] either as mean ± k·σ of everything it saw (the seed's rule,
k = 2 by default: values beyond are clipped) or as a percentile of |x| averaged over batches.
With k = "auto" it keeps an evenly strided sample of the values and picks, per row (tensor or
channel), the k of `AUTO_K_GRID` whose quantize-dequantize error (mean squared, clipping and
rounding together) on that sample is smallest — the empirical form of ACIQ's optimal clipping
(Banner et al.): a fixed k = 2 clips far too much of a skewed post-ReLU6 activation, while
min/max wastes levels on rare outliers.
It plugs into PT2E like torchao's own observers (per tensor or per channel).
"""

from __future__ import annotations

import torch
from torchao.quantization.pt2e.observer import UniformQuantizationObserverBase

# Candidate clipping widths for k = "auto": fine steps where the optimum usually lies, and wide
# enough that the observed min/max (no clipping) is always among the choices.
AUTO_K_GRID = (*[0.5 + 0.25 * i for i in range(0, 47)], 15.0, 20.0, 30.0, 50.0, float("inf"))
SAMPLE_PER_BATCH = 16_384  # values kept per row and batch for k = "auto"
SAMPLE_TOTAL = 262_144  # values kept per row in all


def qparams(
    lo: torch.Tensor, hi: torch.Tensor, qmin: int, qmax: int, symmetric: bool, eps: float = 2**-12
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero point for the real range [lo, hi] (per tensor or per channel)."""
    lo = torch.minimum(lo, torch.zeros_like(lo))
    hi = torch.maximum(hi, torch.zeros_like(hi))
    if symmetric:
        scale = torch.maximum(torch.maximum(-lo, hi) / ((qmax - qmin) / 2), torch.full_like(hi, eps))
        zero_point = torch.zeros_like(scale, dtype=torch.int64)
    else:
        scale = torch.maximum((hi - lo) / (qmax - qmin), torch.full_like(hi, eps))
        zero_point = torch.clamp(qmin - torch.round(lo / scale), qmin, qmax).to(torch.int64)
    return scale.reshape(-1).float(), zero_point.reshape(-1)


def fake_quantize(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, qmin: int, qmax: int) -> torch.Tensor:
    """Quantize then dequantize (scale/zero_point broadcast along dim 0 when per channel)."""
    if scale.numel() > 1:
        shape = (-1,) + (1,) * (x.dim() - 1)
        scale, zero_point = scale.reshape(shape), zero_point.reshape(shape)
    q = torch.clamp(torch.round(x / scale) + zero_point, qmin, qmax)
    return (q - zero_point) * scale


class RangeObserver(UniformQuantizationObserverBase):
    """Observer whose range is mean ± k·σ (`method="meanstd"`) or a percentile of |x|.

    Per tensor, or per channel along `ch_axis` when the qscheme is per-channel. The range never
    exceeds what was actually observed (clipping narrows it, never widens it).
    """

    def __init__(
        self,
        method: str = "meanstd",
        k: float | str = 2.0,
        percentile: float = 99.99,
        ch_axis: int = 0,
        dtype: torch.dtype = torch.int8,
        qscheme: torch.qscheme = torch.per_tensor_affine,
        quant_min: int | None = None,
        quant_max: int | None = None,
        eps: float = 2**-12,
        **kwargs: object,
    ) -> None:
        if method not in ("meanstd", "percentile"):
            raise ValueError(f"RangeObserver: method {method!r} is not meanstd or percentile")
        super().__init__(dtype=dtype, qscheme=qscheme, quant_min=quant_min, quant_max=quant_max, eps=eps, **kwargs)
        self.method, self.k, self.percentile, self.ch_axis = method, k, percentile, ch_axis
        self.per_channel = qscheme in (torch.per_channel_symmetric, torch.per_channel_affine)
        for name in ("count", "total", "total_sq", "seen_min", "seen_max", "pct_lo", "pct_hi"):
            self.register_buffer(name, torch.tensor([]))
        self.batches = 0
        self.sample: list[torch.Tensor] = []
        self.chosen_k: torch.Tensor | None = None

    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        """Observed values as rows: one per channel, or a single row."""
        if self.per_channel:
            return x.detach().transpose(0, self.ch_axis).reshape(x.shape[self.ch_axis], -1).double()
        return x.detach().reshape(1, -1).double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel() == 0:
            return x
        rows = self._rows(x)
        stats = {
            "count": torch.full((rows.shape[0],), float(rows.shape[1]), dtype=torch.float64),
            "total": rows.sum(dim=1),
            "total_sq": (rows * rows).sum(dim=1),
        }
        lo, hi = rows.min(dim=1).values, rows.max(dim=1).values
        if self.batches == 0:
            for name, value in stats.items():
                setattr(self, name, value)
            self.seen_min, self.seen_max = lo, hi
        else:
            for name, value in stats.items():
                setattr(self, name, getattr(self, name) + value)
            self.seen_min, self.seen_max = torch.minimum(self.seen_min, lo), torch.maximum(self.seen_max, hi)
        if self.method == "percentile":
            self._track_percentile(rows)
        if self.k == "auto" and sum(t.shape[1] for t in self.sample) < SAMPLE_TOTAL:
            stride = max(1, rows.shape[1] // SAMPLE_PER_BATCH)
            self.sample.append(rows[:, ::stride].float())
        self.batches += 1
        return x

    def _track_percentile(self, rows: torch.Tensor) -> None:
        """Running mean over batches of each batch's low and high percentiles."""
        q = torch.tensor([1 - self.percentile / 100, self.percentile / 100], dtype=torch.float64)
        # torch.quantile has a size limit; an evenly strided sample keeps it exact enough.
        stride = max(1, rows.shape[1] // 1_000_000)
        cuts = torch.quantile(rows[:, ::stride], q, dim=1)
        if self.batches == 0:
            self.pct_lo, self.pct_hi = cuts[0], cuts[1]
        else:
            n = self.batches
            self.pct_lo = (self.pct_lo * n + cuts[0]) / (n + 1)
            self.pct_hi = (self.pct_hi * n + cuts[1]) / (n + 1)

    def observed_range(self) -> tuple[torch.Tensor, torch.Tensor]:
        """[lo, hi] per row, clipped to what was seen."""
        if self.batches == 0:
            raise RuntimeError("RangeObserver: no data observed; calibrate before converting")
        if self.method == "meanstd":
            mean = self.total / self.count
            std = torch.sqrt(torch.clamp(self.total_sq / self.count - mean * mean, min=0.0))
            k = self._auto_k(mean, std) if self.k == "auto" else torch.full_like(mean, float(self.k))
            lo, hi = mean - k * std, mean + k * std
            lo, hi = torch.where(torch.isinf(k), self.seen_min, lo), torch.where(torch.isinf(k), self.seen_max, hi)
        else:
            lo, hi = self.pct_lo, self.pct_hi
        return torch.maximum(lo, self.seen_min).float(), torch.minimum(hi, self.seen_max).float()

    def _auto_k(self, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """Per row, the k of AUTO_K_GRID with the least quantization MSE on the kept sample."""
        sample = torch.cat(self.sample, dim=1)
        symmetric = self.qscheme in (torch.per_tensor_symmetric, torch.per_channel_symmetric)
        errors = []
        for k in AUTO_K_GRID:
            lo = self.seen_min if k == float("inf") else torch.maximum(mean - k * std, self.seen_min)
            hi = self.seen_max if k == float("inf") else torch.minimum(mean + k * std, self.seen_max)
            scale, zero = qparams(lo.float(), hi.float(), self.quant_min, self.quant_max, symmetric, float(self.eps))
            rebuilt = fake_quantize(sample, scale, zero, self.quant_min, self.quant_max)
            errors.append(((rebuilt - sample) ** 2).mean(dim=1))
        best = torch.stack(errors).argmin(dim=0)
        self.chosen_k = torch.tensor(AUTO_K_GRID, dtype=torch.float64)[best]
        return self.chosen_k

    def calculate_qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        lo, hi = self.observed_range()
        symmetric = self.qscheme in (torch.per_tensor_symmetric, torch.per_channel_symmetric)
        return qparams(lo, hi, self.quant_min, self.quant_max, symmetric, float(self.eps))

    def extra_repr(self) -> str:
        return f"method={self.method}, k={self.k}, percentile={self.percentile}, per_channel={self.per_channel}"
