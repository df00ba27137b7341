"""ament_python package setup for evif_ros (works with colcon and with plain pip)."""
import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "evif_ros"

# Console scripts: the single `evif` CLI plus one executable per node
# (`ros2 run evif_ros <node>`).
NODES = ("davis_driver", "ir_driver", "event_renderer", "evif_node")



def files(pattern: str) -> list[str]:
    """Regular files only: data_files cannot hold folders (models/eval/ is documentation
    that stays in the source tree)."""
    return sorted(p for p in glob(pattern) if os.path.isfile(p))


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", files("launch/*.py")),
        (f"share/{PACKAGE}/config", files("config/*")),
        (f"share/{PACKAGE}/models", files("models/*")),
        (f"share/{PACKAGE}/models/cards", files("models/cards/*")),
        (f"share/{PACKAGE}/calibration", files("calibration/*.yaml")),
    ],
    package_data={PACKAGE: ["py.typed"]},
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="evif_ros maintainers",
    maintainer_email="evif-ros@example.org",
    description="Event-based visible and infrared fusion (EVIF) for ROS 2.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": ["evif = evif_ros.apps.cli:main"]
        + [f"{node} = {PACKAGE}.ros.nodes.entry:{node}" for node in NODES],
    },
)
