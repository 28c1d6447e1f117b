"""Triton kernels and their launchers: the only place tritongrad computes values.

Installed as ``tritongrad.kernels``; there is never a top-level ``kernels`` module.
One file per op family, forward and backward kernels side by side. A launcher
takes torch tensors, checks them, allocates outputs and launches through
:func:`tritongrad.kernels._launch.launch`. Nothing here knows about autograd.
"""
