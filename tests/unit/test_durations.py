import pytest

from streams.plan.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "ms"),
    [("250ms", 250), ("10s", 10_000), ("1m", 60_000), ("2h", 7_200_000), ("1d", 86_400_000), (1500, 1500)],
)
def test_parses_every_unit_to_integer_milliseconds(text: object, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize("bad", ["10", "1.5s", "ten seconds", "-1s", "", True, -5, 1.5, None])
def test_rejects_what_is_not_a_duration_and_names_the_units(bad: object) -> None:
    with pytest.raises(ValueError) as err:
        parse_duration(bad)
    assert "duration" in str(err.value)
