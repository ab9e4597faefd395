from glob import glob

from setuptools import find_packages, setup

package_name = "dp_perception"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/config", glob("config/*.yaml") + glob("config/*.xml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="dp developers",
    maintainer_email="dp@example.com",
    description="Point clouds -> fixed-size policy input (crop, voxel grid, farthest point sampling).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "perception_node = dp_perception.perception_node:main",
        ],
    },
)
