"""Training jobs on real inputs, each a command-line entry point (``python -m bregman_kernels.jobs.<name>``):

* ``two_spiral``: standard vs Bregman MLPs of width 2, 3 and 100 layers deep, on the two-spiral toy;
* ``digits``: standard vs Bregman MLPs on the bundled 8×8 handwritten digits;
* ``cifar``: CIFAR-10 ResNets (one device or several under torchrun), checkpoints and ``--resume``;
* ``robust``: clean and PGD (ℓ∞, ℓ2) accuracy of a CIFAR-10 checkpoint.
"""
