"""Networks: datasets and tasks, models, runs and their cache, the trainer, hooks and recording, pretrained
sources. Imports torch; builds on `analysis.measures` only for streaming statistics.

Training and recording on the CPU use one code path on every x86-64 machine with AVX2 or better: torch's own
kernels, oneDNN's and MKL's are each held to their AVX2 versions (set here, before torch is first used;
variables already set are left alone), because each library otherwise picks the widest vector instructions the
CPU has, and networks trained with other instructions round differently and end up measurably different.
"""
import os

#: the variables that hold torch, oneDNN and MKL to AVX2, and their values (Ray workers get the same; see `cluster`)
CPU_CODE_PATH = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}
for _variable, _value in CPU_CODE_PATH.items():
    os.environ.setdefault(_variable, _value)
del _variable, _value
