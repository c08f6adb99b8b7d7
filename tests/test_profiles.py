"""Profiles: every study's plan builds in both profiles, plans share identical runs, another dataset is one argument."""
import pytest

from analysis.networks.profiles import STUDIES, study_plan


@pytest.mark.parametrize("profile", ["quick", "full"])
@pytest.mark.parametrize("study", sorted(STUDIES))
def test_every_plan_builds(study, profile):
    plan = study_plan(study, profile)
    assert len(plan.configs) == len(set(plan.configs))
    if profile == "full":
        assert all(c.dataset != "fashion-mnist" for c in plan.configs)


def test_another_dataset_is_one_argument():
    plan = study_plan("00", dataset="cifar10")
    assert {c.dataset for c in plan.configs} == {"cifar10"}
    assert [c.seed for c in plan.configs] == [c.seed for c in study_plan("00").configs]
    with pytest.raises(ValueError, match="unknown dataset"):
        study_plan("00", dataset="mnist")
    with pytest.raises(ValueError, match="no plan for study"):
        study_plan("99")
    with pytest.raises(ValueError, match="unknown profile"):
        study_plan("00", "huge")
