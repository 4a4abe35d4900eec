"""The engine: admission, scheduling, generation and finishing of jobs (see ARCHITECTURE.md).

Importing it first pins one numerical setting every process that runs a generator needs:
MKL's conditional numerical reproducibility (``MKL_CBWR=AUTO``). Without it MKL picks kernels
by the memory alignment of its inputs, so the same matrix product can differ in the last bits
between two runs of one process (seen here: F.linear on a (3, 300) input at 15 alignments,
up to 1.5e-5 apart), and "same (command, options, seed), same bytes" would hold only for
most heaps. MKL reads the variable once, when it loads, so it must be set before torch is
imported; child generator processes and workers inherit it. An explicit setting wins.
tests/engine/test_numerics.py checks it.
"""
import os as _os

_os.environ.setdefault("MKL_CBWR", "AUTO")
