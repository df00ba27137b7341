"""Find shipped data (config, calibration, models, launch) in every kind of install.

Order: a colcon/ament install (``share/evif_ros`` via ament_index), then the source tree
(editable pip install, running from a clone), then ``<prefix>/share/evif_ros`` (plain
pip install with data_files).
"""

from __future__ import annotations

import sys
from pathlib import Path

from evif_ros.errors import InputFileError

PACKAGE = "evif_ros"
# the model evif_node, evif eval and the benchmarks load when none is named
DEFAULT_MODEL = "evif_rt.ts"
# its same-budget ablation without cross-task enhancement (evif eval's IR PSNR rows)
ABLATION_MODEL = "evif_rt_no_enhance.ts"


def _candidates() -> list[Path]:
    roots = []
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
        try:
            roots.append(Path(get_package_share_directory(PACKAGE)))
        except (PackageNotFoundError, ValueError, LookupError, OSError):
            pass
    except ImportError:
        pass
    roots.append(Path(__file__).resolve().parent.parent)
    roots.append(Path(sys.prefix) / "share" / PACKAGE)
    return roots


def share_file(*parts: str) -> Path:
    """Path of a shipped file, e.g. ``share_file("calibration", "synthetic_rig.yaml")``."""
    for root in _candidates():
        path = root.joinpath(*parts)
        if path.exists():
            return path
    raise InputFileError(f"{'/'.join(parts)}: not found in any evif_ros install "
                         f"(looked in {', '.join(str(r) for r in _candidates())})")


def output_dir(path: Path, flag: str = "--out") -> Path:
    """Create an output folder (and its parents); a one-line error when ``path`` is a file
    or cannot be created."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputFileError(f"{path}: exists and is not a folder ({flag})")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputFileError(f"{path}: cannot create the folder ({flag}: "
                             f"{exc.strerror})") from exc
    return path
