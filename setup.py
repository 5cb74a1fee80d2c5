"""Packaging beyond pyproject.toml: ship the built-in experiments/ and configs/ inside the package.

A regular (non-editable) install copies them to ``jaxopt_lab/_project/``, where
:mod:`jaxopt_lab.lab.project` finds them, so ``jaxopt-lab list``, ``run quickstart`` and every
reproduction work from any directory. An editable install uses the checkout's folders directly.
"""

from setuptools import find_packages, setup

PROJECT = {"jaxopt_lab._project.experiments": "experiments", "jaxopt_lab._project.configs": "configs"}

setup(
    packages=find_packages(include=["jaxopt_lab", "jaxopt_lab.*"]) + list(PROJECT),
    package_dir=PROJECT,
    package_data={"jaxopt_lab._project.experiments": ["*.py"],
                  "jaxopt_lab._project.configs": ["*.py", "*/*.py", "*/*/*.py", "reproduce/records/*.json"]},
)
