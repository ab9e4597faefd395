from glob import glob

from setuptools import find_packages, setup

package_name = "dp_sim"

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
    description="MuJoCo tabletop simulator, scripted expert and demonstration tools for dp.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "sim_node = dp_sim.sim_node:main",
            "make_dataset = dp_sim.make_dataset:main",
            "record_demos = dp_sim.record_demos:main",
            "bag_to_zarr = dp_sim.bag_to_zarr:main",
            "eval_expert = dp_sim.eval_expert:main",
            "closed_loop = dp_sim.closed_loop:main",
            "oracle_node = dp_sim.oracle_node:main",
        ],
    },
)
