"""Similarity of neural network representations: CCA, SVCCA, PWCCA, CKA, and the studies built on them.

Layers, each importing only those below it: `measures` (arrays in, numbers out), `networks` (datasets,
models, training runs and their cache, hooks, pretrained sources), `studies` (helpers of the notebooks),
`pipeline` (figures, claims, running every notebook). Names are loaded on first use, so `import analysis`
followed by `analysis.cca(x, y)` never imports torch.nn.
"""
from __future__ import annotations

from importlib import import_module

_NAMES = {
    "analysis.measures": (
        "CCAResult", "CrossStats", "DFTCCAResult", "Grid", "GridStats", "GroupComparison", "MEASURES", "Measure",
        "average_pool", "cca", "cka", "compare_group", "dft_cca", "flatten", "linear_cka", "positions_as_samples",
        "procrustes_distance", "pwcca", "similarity_grid", "svcca",
    ),
    "analysis.networks.data": ("Dataset", "Split", "load", "register"),
    "analysis.networks.models": ("build_model", "freeze"),
    "analysis.networks.hooks": ("capture", "evaluating", "iter_activations", "record", "replacing",
                                "steps_as_samples", "stream_stats"),
    "analysis.networks.runs": ("Run", "RunConfig", "accuracy", "train", "train_many"),
    "analysis.networks.cluster": ("Cluster", "RunsFailed"),
    "analysis.networks.profiles": ("StudyPlan", "profile_config", "study_plan"),
    "analysis.networks.sources": ("Pretrained",),
    "analysis.studies.dynamics": ("Convergence", "convergence_order", "depth_correlation", "learning_grids",
                                  "lower_minus_upper", "self_similarity"),
    "analysis.studies.neurons": ("TopUnitMatch", "align_signs", "best_matches", "class_variance_fraction",
                                 "match_top_units", "top_units", "unit_correlations", "unit_norms"),
    "analysis.studies.sequences": ("OverSequence", "over_sequence"),
    "analysis.studies.freezing": ("backward_saving", "freeze_schedule", "layer_macs", "matched_schedule"),
    "analysis.studies.compression": ("Projection", "pca_projection", "projected_accuracy", "svcca_projection"),
    "analysis.studies.matching": ("SparsePrediction", "one_to_one", "sparse_prediction"),
    "analysis.studies.visualize": ("REGULARIZERS", "Regularizer", "high_frequency_fraction", "maximize", "tiles"),
}
_WHERE = {name: module for module, names in _NAMES.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    value = getattr(import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
