from glob import glob

from setuptools import find_packages, setup

package_name = "dp_eval"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/config", glob("config/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="dp developers",
    maintainer_email="dp@example.com",
    description="Offline evaluation of dp policies by rosbag replay.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "dp_eval = dp_eval.evaluate:main",
            "bag_player = dp_eval.player:main",
            "bag_recorder = dp_eval.recorder:main",
            "bag_to_zarr = dp_eval.bag_to_zarr:main",
        ],
    },
)
