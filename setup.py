"""Build of bregman_kernels; the C++/CUDA extensions are declared in csrc/ (see README, Building)."""

from setuptools import setup

setup()
