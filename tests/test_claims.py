"""eoslib.claims: claim checks print value, criterion and margin, and fail with one line."""

import math

import pytest

from eoslib.claims import WIDTH, Claim, check, glue


def test_margin_is_relative_distance_to_the_nearest_bound(capsys):
    c = check("median ratio", 1.02, low=0.95, high=1.10)
    assert c.margin == pytest.approx(min(0.07 / 0.95, 0.08 / 1.10))
    out = capsys.readouterr().out
    assert out.startswith("✓ median ratio = 1.02") and "criterion [0.95, 1.1]" in out and "margin 7.3%" in out


@pytest.mark.parametrize("value,low,high", [(0.5, 0.8, None), (3.0, None, 2.0), (1.2, 0.9, 1.1)])
def test_violations_raise_one_line(value, low, high, capsys):
    with pytest.raises(AssertionError) as err:
        check("x", value, low=low, high=high)
    assert "\n" not in str(err.value) and "outside the claimed" in str(err.value)
    assert capsys.readouterr().out.startswith("✗ x")


@pytest.mark.parametrize("missing", [None, math.nan])
def test_a_missing_value_fails_readably(missing):
    with pytest.raises(AssertionError, match="was not measured"):
        check("crossing step", missing, low=0)


def test_bounds_are_required_and_lines_fit_the_code_column(capsys):
    with pytest.raises(ValueError):
        check("x", 1.0)
    check("a very long description of a measured quantity " * 3, 0.5, low=0.1, high=0.9)
    assert all(len(line) <= WIDTH for line in capsys.readouterr().out.splitlines())
    assert Claim("x", 2.0, 1.0, None).margin == 1.0 and Claim("x", 0.0, 0.0, None).margin == 0.0


def test_glue_returns_the_formatted_text():
    assert glue("test-claims-glue", 3700, "{:d}") == "3700"
    assert glue("test-claims-none", None) == "n/a"
