"""Event voxel grids (vectorized with ``np.bincount``; no per-event Python).

All grids take a time window ``[t0_ns, t1_ns)`` so that consecutive windows are binned
on the same time base, and return float32 arrays of shape ``(C, height, width)``.
Events outside the window or the sensor are ignored.

- :func:`voxel_grid` - E2VID (Rebecq et al., TPAMI 2019): ``B`` bins, each event adds
  its signed polarity to the two nearest bins, bilinearly in time; optional
  normalisation of the non-zero cells to zero mean and unit std.
- :func:`polarity_voxel_grid` - the authors' release: ``B`` hard time bins per
  polarity, counts, channels ``[ON_0..ON_{B-1}, OFF_0..OFF_{B-1}]``.
- :func:`scer` - EFNet's Symmetric Cumulative Event Representation (Sun et al., ECCV
  2022): the window is cut into ``C`` equal intervals around its centre ``t_c``; channel
  ``i < C/2`` sums signed polarities over ``[t_i, t_c)``, channel ``i >= C/2`` over
  ``[t_c, t_{i+1})``, so channels grow outward from the centre.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _prepare(events: np.ndarray, t0_ns: int, t1_ns: int, height: int, width: int):
    """Cut the window out of time-sorted events (binary search) and drop off-sensor ones.

    Returns the kept events and their flat pixel index ``y * width + x``.
    """
    if t1_ns <= t0_ns:
        raise ValueError(f"empty time window [{t0_ns}, {t1_ns}) ns")
    i0, i1 = np.searchsorted(events["t"], [t0_ns, t1_ns], side="left")
    events = events[i0:i1]
    x, y = events["x"], events["y"]
    if x.size and (int(x.max()) >= width or int(y.max()) >= height):
        events = events[(x < width) & (y < height)]
        x, y = events["x"], events["y"]
    pix = np.multiply(y, width, dtype=np.intp)
    pix += x
    return events, pix


def _bin_starts(t: np.ndarray, t0_ns: int, t1_ns: int, bins: int) -> np.ndarray:
    """Index of the first event of each of ``bins`` equal time bins (plus the end)."""
    edges = t0_ns + (np.arange(bins + 1, dtype=np.float64) * ((t1_ns - t0_ns) / bins))
    starts = np.searchsorted(t, np.ceil(edges[:-1]).astype(np.int64), side="left")
    return np.append(starts, t.shape[0])


def voxel_grid(events: np.ndarray, bins: int, t0_ns: int, t1_ns: int, height: int,
               width: int, normalize: bool = False) -> np.ndarray:
    """E2VID bilinear-in-time voxel grid, shape ``(bins, height, width)``.

    An event at normalised time ``tau = (bins - 1) * (t - t0) / (t1 - t0)`` and polarity
    ``s = +1/-1`` adds ``s * (1 - frac(tau))`` to bin ``floor(tau)`` and ``s * frac(tau)``
    to the next bin. Events must be time-sorted.
    """
    events, pix = _prepare(events, t0_ns, t1_ns, height, width)
    npix = height * width
    grid = np.zeros((bins, npix), dtype=np.float64)
    if bins == 1:
        grid[0] = np.bincount(pix, weights=events["p"] * 2.0 - 1.0, minlength=npix)
        return _finish(grid.reshape(1, height, width), normalize)
    t = events["t"]
    tau = (t - t0_ns).astype(np.float32) * np.float32((bins - 1) / (t1_ns - t0_ns))
    sign = events["p"].astype(np.float32) * 2 - 1
    # time-sorted events: the events whose tau lies in [k, k+1) are one contiguous run
    starts = np.searchsorted(tau, np.arange(bins, dtype=np.float32), side="left")
    starts = np.append(starts, tau.shape[0])
    for k in range(bins):
        a, b = starts[k], starts[k + 1]
        if a == b:
            continue
        s = sign[a:b]
        w_right = s * (tau[a:b] - np.float32(k))
        grid[k] += np.bincount(pix[a:b], weights=s - w_right, minlength=npix)
        if k + 1 < bins:
            grid[k + 1] += np.bincount(pix[a:b], weights=w_right, minlength=npix)
    return _finish(grid.reshape(bins, height, width), normalize)


def _finish(grid: np.ndarray, normalize: bool) -> np.ndarray:
    grid = grid.astype(np.float32)
    return normalize_nonzero(grid) if normalize else grid


def normalize_nonzero(grid: np.ndarray) -> np.ndarray:
    """E2VID normalisation: non-zero cells to zero mean, unit std (zeros stay zero)."""
    nz = grid != 0
    if nz.any():
        vals = grid[nz]
        mean, std = vals.mean(), vals.std()
        grid = grid.copy()
        grid[nz] = (vals - mean) / std if std > 0 else vals - mean
    return grid


def _binned_counts(events: np.ndarray, pix: np.ndarray, t0_ns: int, t1_ns: int, bins: int,
                   npix: int, signed: bool) -> np.ndarray:
    """Per time bin: signed polarity sums ``(bins, npix)`` or ON/OFF counts
    ``(bins, 2, npix)``. Bins are contiguous runs of the time-sorted events."""
    starts = _bin_starts(events["t"], t0_ns, t1_ns, bins)
    p = events["p"]
    if signed:
        out = np.zeros((bins, npix), dtype=np.float64)
        weights = p * 2.0 - 1.0
        for k in range(bins):
            a, b = starts[k], starts[k + 1]
            if a < b:
                out[k] = np.bincount(pix[a:b], weights=weights[a:b], minlength=npix)
        return out
    key = np.where(p.astype(bool), pix, pix + npix)  # ON cells first, then OFF
    out = np.zeros((bins, 2 * npix), dtype=np.int64)
    for k in range(bins):
        a, b = starts[k], starts[k + 1]
        if a < b:
            out[k] = np.bincount(key[a:b], minlength=2 * npix)
    return out.reshape(bins, 2, npix)


def polarity_voxel_grid(events: np.ndarray, bins: int, t0_ns: int, t1_ns: int,
                        height: int, width: int) -> np.ndarray:
    """Event counts in ``bins`` hard time bins per polarity, shape ``(2 * bins, H, W)``.

    Channels are ``[ON_0..ON_{bins-1}, OFF_0..OFF_{bins-1}]``. Events must be time-sorted.
    """
    events, pix = _prepare(events, t0_ns, t1_ns, height, width)
    counts = _binned_counts(events, pix, t0_ns, t1_ns, bins, height * width, signed=False)
    return counts.transpose(1, 0, 2).reshape(2 * bins, height, width).astype(np.float32)


def scer(events: np.ndarray, channels: int, t0_ns: int, t1_ns: int, height: int,
         width: int) -> np.ndarray:
    """EFNet SCER, shape ``(channels, H, W)``; ``channels`` must be even."""
    if channels % 2:
        raise ValueError(f"SCER needs an even channel count, got {channels}")
    events, pix = _prepare(events, t0_ns, t1_ns, height, width)
    per_bin = _binned_counts(events, pix, t0_ns, t1_ns, channels, height * width, signed=True)
    per_bin = per_bin.reshape(channels, height, width)
    c = channels // 2
    out = np.empty((channels, height, width), dtype=np.float32)
    out[:c] = np.cumsum(per_bin[:c][::-1], axis=0)[::-1]  # [t_i, t_c)
    out[c:] = np.cumsum(per_bin[c:], axis=0)  # [t_c, t_{i+1})
    return out


@dataclass(frozen=True)
class VoxelSpec:
    """Which grid and its size; ``kind`` is ``e2vid``, ``polarity`` or ``scer``."""

    kind: str = "polarity"
    bins: int = 5
    height: int = 260
    width: int = 346
    normalize: bool = False

    @property
    def channels(self) -> int:
        return 2 * self.bins if self.kind == "polarity" else self.bins

    def __call__(self, events: np.ndarray, t0_ns: int, t1_ns: int) -> np.ndarray:
        if self.kind == "e2vid":
            return voxel_grid(events, self.bins, t0_ns, t1_ns, self.height, self.width,
                              self.normalize)
        if self.kind == "polarity":
            grid = polarity_voxel_grid(events, self.bins, t0_ns, t1_ns, self.height,
                                       self.width)
        elif self.kind == "scer":
            grid = scer(events, self.bins, t0_ns, t1_ns, self.height, self.width)
        else:
            raise ValueError(f"unknown voxel kind {self.kind!r} (e2vid, polarity, scer)")
        return normalize_nonzero(grid) if self.normalize else grid


WINDOW_BINS = 5  # time bins per polarity of every grid of a window


def _fine_edges(edges_ns: np.ndarray, bins: int) -> np.ndarray:
    """The ``bins`` time-bin starts of each window between consecutive ``edges_ns``, plus
    the last edge: the same (ceil'ed) bin edges as :func:`polarity_voxel_grid`."""
    edges = np.asarray(edges_ns, dtype=np.int64)
    frac = np.arange(bins, dtype=np.float64) / bins
    starts = edges[:-1, None] + frac[None, :] * (edges[1:] - edges[:-1]).astype(np.float64)[
        :, None]
    return np.append(np.ceil(starts).astype(np.int64).reshape(-1), edges[-1])


def _pixel_codes(events: np.ndarray, height: int, width: int, bins: int
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """``(code, keep)``: each event's cell offset inside one grid, ``polarity * bins * H * W
    + pixel`` (OFF after ON), and whether it lies on the sensor (None: all do)."""
    x, y = events["x"], events["y"]
    code = np.multiply(y, width, dtype=np.intp)
    code += x
    code += (1 - events["p"].astype(np.intp)) * (bins * height * width)
    keep = None
    if x.size and (int(x.max()) >= width or int(y.max()) >= height):
        keep = (x < width) & (y < height)
    return code, keep


def _window_cells(events: np.ndarray, edges_ns: np.ndarray, height: int, width: int,
                  bins: int, codes: tuple[np.ndarray, np.ndarray | None]) -> np.ndarray:
    """Each event's flat cell (grid, polarity, bin, pixel) in a ``(G, 2 * bins, H, W)``
    layout for the G windows between consecutive ``edges_ns``; events outside the windows
    or the sensor dropped. ``codes``: :func:`_pixel_codes` of ``events``."""
    fine = _fine_edges(edges_ns, bins)
    starts = np.searchsorted(events["t"], fine, side="left")
    fine_bin = np.repeat(np.arange((len(edges_ns) - 1) * bins, dtype=np.intp),
                         np.diff(starts))
    code, keep = (a[starts[0]:starts[-1]] if a is not None else None for a in codes)
    grid, b = np.divmod(fine_bin, bins)
    cell = (grid * (2 * bins) + b) * (height * width)
    cell += code
    return cell if keep is None else cell[keep]


def window_voxels(events: np.ndarray, t_start_ns: int, exposure_ns: int,
                  recon_edges_ns: np.ndarray, height: int, width: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Network inputs of one IR exposure, in fresh arrays: the exposure's polarity grid
    (10, H, W) (:func:`polarity_voxel_grid` with 5 bins) and one per reconstruction
    sub-window (K, 10, H, W); ``recon_edges_ns`` are the K + 1 edges. Training takes
    these; the runtime keeps one :class:`WindowVoxelizer`."""
    vox = WindowVoxelizer(height, width, len(recon_edges_ns) - 1)
    return vox(events, t_start_ns, exposure_ns, recon_edges_ns)


class WindowVoxelizer:
    """The grids of a stream of windows in one pass each, into one buffer kept between
    calls.

    Each event gets one flat cell index (grid, polarity, bin, pixel) in the buffer's own
    layout, so nothing is converted or transposed; counts land with one sort
    (``np.unique``) or, when events outnumber a tenth of the cells, one ``np.bincount``.
    A fresh 25 MB grid per window (K=6 at 346x260) costs its allocation and a page fault per
    4 KiB touched; here only the cells the previous window wrote are cleared. The arrays
    returned are views of that buffer: the next window overwrites them. Events must be
    time-sorted (within each packet, for :meth:`add`).

    A whole window at once: ``vox(events, t_start_ns, exposure_ns, edges)``. As its packets
    arrive: ``vox.begin(t_start_ns, exposure_ns, edges)``, then ``vox.add(packet)`` for each
    (in any order, each once), then ``vox.grids()``: the same grids.
    """

    def __init__(self, height: int, width: int, k: int, bins: int = WINDOW_BINS):
        self.height, self.width, self.k, self.bins = height, width, k, bins
        self.buf = np.zeros((k + 1, 2 * bins, height, width), dtype=np.float32)
        self._flat = self.buf.reshape(-1)
        self._touched: list[np.ndarray] | None = []  # cells written; None: maybe all
        self._n_touched = 0  # their total
        self._window: tuple[int, int, np.ndarray] | None = None

    def __call__(self, events: np.ndarray, t_start_ns: int, exposure_ns: int,
                 recon_edges_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(exposure grid (10, H, W), sub-window grids (K, 10, H, W))`` as
        :func:`window_voxels` defines them."""
        self.begin(t_start_ns, exposure_ns, recon_edges_ns)
        cells = self._cells(events)
        if cells.size > self._flat.size // 10:  # dense: counting every cell beats sorting
            np.copyto(self._flat, np.bincount(cells, minlength=self._flat.size),
                      casting="unsafe")
            self._touched = None
        else:
            keys, counts = np.unique(cells.astype(np.int32), return_counts=True)
            self._flat[keys] = counts
            self._touched, self._n_touched = [keys], keys.size
        return self.grids()

    def begin(self, t_start_ns: int, exposure_ns: int, recon_edges_ns: np.ndarray) -> None:
        """Clear the previous window and start this one (events come with :meth:`add`)."""
        if len(recon_edges_ns) != self.k + 1:
            raise ValueError(f"{len(recon_edges_ns)} sub-window edges for K={self.k}")
        if self._touched is None:
            self._flat.fill(0)
        else:
            for keys in self._touched:
                self._flat[keys] = 0
        self._touched, self._n_touched = [], 0
        self._window = (int(t_start_ns), int(exposure_ns), np.asarray(recon_edges_ns))

    def add(self, events: np.ndarray) -> None:
        """Count one packet's events of the current window (the rest are ignored)."""
        t_start, exposure, edges = self._window
        if events.size == 0 or int(events["t"][-1]) < min(int(edges[0]), t_start) \
                or int(events["t"][0]) >= max(int(edges[-1]), t_start + exposure):
            return  # another window's packet
        cells = self._cells(events)
        if cells.size == 0:
            return
        keys, counts = np.unique(cells.astype(np.int32), return_counts=True)
        self._flat[keys] += counts
        if self._touched is not None:
            self._touched.append(keys)
            self._n_touched += keys.size
            if self._n_touched > self._flat.size // 10:
                self._touched = None  # clearing it whole is cheaper then

    def grids(self) -> tuple[np.ndarray, np.ndarray]:
        """``(exposure grid (10, H, W), sub-window grids (K, 10, H, W))``, views."""
        return self.buf[self.k], self.buf[:self.k]

    def _cells(self, events: np.ndarray) -> np.ndarray:
        """The flat cells of the current window's events: the K sub-windows' grids first,
        the exposure grid last."""
        t_start, exposure, edges = self._window
        h, w, bins = self.height, self.width, self.bins
        t0, t1 = min(int(edges[0]), t_start), max(int(edges[-1]), t_start + exposure)
        i0, i1 = np.searchsorted(events["t"], [t0, t1], side="left")
        events = events[i0:i1]  # the events of both: their pixel codes once
        codes = _pixel_codes(events, h, w, bins)
        subs = _window_cells(events, edges, h, w, bins, codes)
        exp = _window_cells(events, np.array([t_start, t_start + exposure]), h, w, bins,
                            codes)
        exp += self.k * 2 * bins * h * w  # the exposure grid is the buffer's last
        return np.concatenate([subs, exp])
