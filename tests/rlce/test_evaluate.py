"""The paired before/after comparison of two evaluations of the same problems."""

from __future__ import annotations

import math

import pytest

from rlce.evaluate import paired_difference


def test_paired_difference_is_the_mean_of_per_problem_differences_with_its_standard_error():
    before = {"a": [0, 4], "b": [1, 4], "c": [4, 4], "d": [0, 4], "e": [2, 4]}
    after = {"a": [0, 4], "b": [3, 4], "c": [4, 4], "d": [1, 4], "e": [1, 4]}
    p = paired_difference(before, after)
    # worked out by hand: the differences are 0, 0.5, 0, 0.25, -0.25, so the mean is 0.1; the
    # squared deviations sum to 0.325, the sample variance is 0.325 / 4 = 0.08125 and the
    # standard error sqrt(0.08125 / 5) = sqrt(0.01625) = 0.127475; z = 0.1 / 0.127475 = 0.784465
    # and P(Z > 0.7845) = 0.2164 (a normal table)
    assert p["problems"] == 5 and p["diff"] == pytest.approx(0.1)
    assert p["se"] == pytest.approx(0.127475, abs=1e-6)
    assert p["z"] == pytest.approx(0.784465, abs=1e-6)
    assert p["p_one_sided"] == pytest.approx(0.2164, abs=1e-4)
    assert (p["better"], p["worse"], p["same"]) == (2, 1, 2)


def test_problems_judged_in_only_one_evaluation_are_left_out():
    # "x" is missing after, "y" had every sample fail in the sandbox (none judged) before
    before = {"a": [0, 4], "b": [2, 4], "x": [4, 4], "y": [0, 0]}
    after = {"a": [2, 4], "b": [2, 4], "y": [4, 4]}
    p = paired_difference(before, after)
    assert p["problems"] == 2 and p["diff"] == pytest.approx(0.25)
    # unequal sample counts are compared as rates
    p = paired_difference({"a": [1, 2], "b": [0, 4]}, {"a": [2, 4], "b": [2, 4]})
    assert p["diff"] == pytest.approx(0.25) and (p["better"], p["same"]) == (1, 1)


def test_no_change_is_z_zero_and_a_constant_gain_is_infinitely_sure():
    same = {"a": [1, 4], "b": [0, 4]}
    p = paired_difference(same, same)
    assert p["diff"] == 0.0 and p["se"] == 0.0 and p["z"] == 0.0 and p["p_one_sided"] == 0.5
    up = paired_difference(same, {"a": [2, 4], "b": [1, 4]})
    assert up["z"] == math.inf and up["p_one_sided"] == 0.0


def test_fewer_than_two_common_problems_is_an_error_that_says_so():
    with pytest.raises(ValueError, match="at least 2 problems judged in both"):
        paired_difference({"a": [1, 4]}, {"a": [2, 4], "b": [1, 4]})
