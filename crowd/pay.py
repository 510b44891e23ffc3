"""Fair pay: the hourly rate a reward makes at a given time per participant. No Django here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PayCheck:
    reward: float
    minutes: float
    hourly: float
    floor: float
    recommended: float

    @property
    def below_floor(self) -> bool:
        return self.hourly < self.floor

    @property
    def below_recommended(self) -> bool:
        return self.hourly < self.recommended

    @property
    def reward_for_floor(self) -> float:
        """The reward that pays the floor at this time, rounded up to a cent."""
        return _cents_up(self.floor * self.minutes / 60)

    @property
    def reward_for_recommended(self) -> float:
        return _cents_up(self.recommended * self.minutes / 60)


def _cents_up(amount: float) -> float:
    cents = amount * 100
    whole = int(cents)
    return (whole + (cents - whole > 1e-9)) / 100


def check_pay(reward: float, minutes: float, floor: float, recommended: float) -> PayCheck:
    """Raises ValueError for a negative reward or a time that is not positive."""
    if reward < 0:
        raise ValueError("the reward cannot be negative")
    if not minutes > 0:
        raise ValueError("the time per participant must be more than zero minutes")
    return PayCheck(reward, minutes, reward * 60 / minutes, floor, recommended)


def median(values: list[float]) -> float | None:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return None
    middle = n // 2
    return ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2
