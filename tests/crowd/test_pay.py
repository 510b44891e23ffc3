"""The pay calculator's arithmetic, checked by hand-worked figures."""

from __future__ import annotations

import pytest

from crowd.pay import check_pay, median


class TestCheckPay:
    def test_it_gives_the_hourly_rate(self):
        # 2.50 for 20 minutes: three such sessions an hour, 7.50 an hour.
        pay = check_pay(2.50, 20, floor=6.0, recommended=9.0)
        assert pay.hourly == pytest.approx(7.50)
        assert not pay.below_floor and pay.below_recommended

    def test_it_warns_below_the_floor_and_says_what_would_meet_it(self):
        # 1.00 for 15 minutes is 4.00 an hour; the floor (6/h) for 15 minutes is 1.50.
        pay = check_pay(1.00, 15, floor=6.0, recommended=9.0)
        assert pay.hourly == pytest.approx(4.0)
        assert pay.below_floor
        assert pay.reward_for_floor == 1.50
        assert pay.reward_for_recommended == 2.25

    def test_it_rounds_the_needed_reward_up_to_a_cent(self):
        # 6/h for 7 minutes is 0.70 exactly; for 7.1 minutes 0.71; for 7.05 minutes 0.705 -> 0.71.
        assert check_pay(0, 7, 6.0, 9.0).reward_for_floor == 0.70
        assert check_pay(0, 7.05, 6.0, 9.0).reward_for_floor == 0.71

    def test_it_refuses_nonsense(self):
        with pytest.raises(ValueError, match="more than zero"):
            check_pay(1.0, 0, 6.0, 9.0)
        with pytest.raises(ValueError, match="negative"):
            check_pay(-1.0, 10, 6.0, 9.0)


def test_median():
    assert median([]) is None
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
