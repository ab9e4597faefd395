from glob import glob

from setuptools import find_packages, setup

package_name = "dp_control"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/config", glob("config/*.yaml")),
        ("share/" + package_name + "/config/moveit", glob("config/moveit/*")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="dp developers",
    maintainer_email="dp@example.com",
    description="Action chunks -> smooth, limited 50 Hz joint commands (ros2_control / MoveIt).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "control_node = dp_control.control_node:main",
        ],
    },
)
