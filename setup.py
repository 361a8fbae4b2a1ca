"""Which files the wheel holds; everything else about the project is in pyproject.toml.

templates/, static/, migrations/ and deploy/ stay at the top of the repository and
are shipped inside the `twooter` package (twooter/templates, …), where
twooter.config.shipped_folder finds them in an installed copy.
"""
from setuptools import find_packages, setup

SHIPPED_FOLDERS = ("templates", "static", "migrations", "deploy")

setup(
    packages=find_packages(include=["twooter*", "migrate_tools*"])
    + [f"twooter.{folder}" for folder in SHIPPED_FOLDERS],
    package_dir={f"twooter.{folder}": folder for folder in SHIPPED_FOLDERS},
    package_data={
        "twooter": ["simapi_openapi.json", "logs/logging.json"],
        **{f"twooter.{folder}": ["**/*"] for folder in SHIPPED_FOLDERS},
    },
    exclude_package_data={"": ["__pycache__/*", "*.pyc"]},
)
