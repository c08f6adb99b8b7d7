"""Networks: datasets and tasks, models, runs and their cache, the trainer, hooks and recording, pretrained
sources. Imports torch; builds on `analysis.measures` only for streaming statistics.

Training and recording on the CPU use one code path on every x86-64 machine with AVX2 or better: torch's own
kernels, oneDNN's and MKL's are each held to their AVX2 versions (set here, before torch is first used;
variables already set are left alone), because each library otherwise picks the widest vector instructions the
CPU has, and networks trained with other instructions round differently and end up measurably different.
"""
import os

for _variable, _value in (("ATEN_CPU_CAPABILITY", "avx2"), ("ONEDNN_MAX_CPU_ISA", "AVX2"), ("MKL_CBWR", "AVX2")):
    os.environ.setdefault(_variable, _value)
del _variable, _value
