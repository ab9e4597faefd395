from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

package_name = "dp_policy"

console_scripts = ["dp_train = dp_policy.train:main"]
# The node is written separately; only expose it once the module exists.
if (Path(__file__).parent / package_name / "policy_node.py").exists():
    console_scripts.append("policy_node = dp_policy.policy_node:main")

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
    description="DP3 / Diffusion Policy inference and training for the dp pipeline.",
    license="Apache-2.0",
    entry_points={"console_scripts": console_scripts},
)
