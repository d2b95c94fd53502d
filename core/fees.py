"""Venue fee models (see shared/reference/venues.md). Fees are never negative and never floats."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Protocol

from core.instruments import AssetClass, Instrument, Venue
from core.types import ZERO, Frozen, Liquidity, NonNegative

CENT = Decimal("0.01")


def ceil_to_cent(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_CEILING)


class FeeModel(Protocol):
    def fee(self, instrument: Instrument, quantity: Decimal, price: Decimal, liquidity: Liquidity) -> Decimal: ...


class KalshiFees(Frozen):
    """taker = ceil_to_cent(0.07 x C x P x (1-P)); maker = 0.0175 x C x P x (1-P) where the series charges makers."""

    taker_rate: NonNegative = Decimal("0.07")
    maker_rate: NonNegative = Decimal("0.0175")
    charges_makers: bool = False
    fee_multiplier: NonNegative = Decimal(1)

    def fee(self, instrument: Instrument, quantity: Decimal, price: Decimal, liquidity: Liquidity) -> Decimal:
        if liquidity is Liquidity.MAKER and not self.charges_makers:
            return ZERO
        rate = self.taker_rate if liquidity is Liquidity.TAKER else self.maker_rate
        return ceil_to_cent(rate * self.fee_multiplier * quantity * price * (1 - price))


class RateFees(Frozen):
    """A proportional fee on notional (Coinbase: tier rates read from transaction_summary)."""

    maker_rate: NonNegative = Decimal("0.004")
    taker_rate: NonNegative = Decimal("0.006")
    places: int = 8

    def fee(self, instrument: Instrument, quantity: Decimal, price: Decimal, liquidity: Liquidity) -> Decimal:
        rate = self.taker_rate if liquidity is Liquidity.TAKER else self.maker_rate
        notional = quantity * price * instrument.multiplier
        return (notional * rate).quantize(Decimal(1).scaleb(-self.places), rounding=ROUND_HALF_UP)


class IbkrFixedFees(Frozen):
    """IBKR Pro fixed: stocks per share with min and max (% of value); options and futures per contract.

    Metals (spot XAUUSD) are charged as a rate on value with a minimum; IBKR's exact metal schedule is not in
    our reference, so the defaults are an explicit assumption, configurable per deployment.
    """

    per_share: NonNegative = Decimal("0.005")
    share_min: NonNegative = Decimal("1.00")
    share_max_rate: NonNegative = Decimal("0.01")
    per_option_contract: NonNegative = Decimal("0.65")
    option_min: NonNegative = Decimal("1.00")
    per_future_contract: NonNegative = Decimal("0.85")
    metal_rate: NonNegative = Decimal("0.00015")
    metal_min: NonNegative = Decimal("2.00")

    def fee(self, instrument: Instrument, quantity: Decimal, price: Decimal, liquidity: Liquidity) -> Decimal:
        value = quantity * price * instrument.multiplier
        match instrument.asset_class:
            case AssetClass.EQUITY:
                raw = max(quantity * self.per_share, self.share_min)
                return min(raw, value * self.share_max_rate).quantize(CENT, rounding=ROUND_HALF_UP)
            case AssetClass.OPTION:
                return max(quantity * self.per_option_contract, self.option_min).quantize(CENT)
            case AssetClass.FUTURE:
                return (quantity * self.per_future_contract).quantize(CENT)
            case AssetClass.METAL:
                return max(value * self.metal_rate, self.metal_min).quantize(CENT, rounding=ROUND_HALF_UP)
            case _:
                raise ValueError(f"IBKR fee model has no schedule for {instrument.asset_class.value}")


class FeeSchedule(Frozen):
    """The fee model of each venue; the paper simulator charges what the instrument's venue would."""

    kalshi: KalshiFees = KalshiFees()
    coinbase: RateFees = RateFees()
    ibkr: IbkrFixedFees = IbkrFixedFees()

    def fee(self, instrument: Instrument, quantity: Decimal, price: Decimal, liquidity: Liquidity) -> Decimal:
        model: FeeModel
        match instrument.venue:
            case Venue.SIMULATED:  # first: a backtest asks once per fill
                return ZERO
            case Venue.KALSHI:
                model = self.kalshi
            case Venue.COINBASE:
                model = self.coinbase
            case Venue.IBKR:
                model = self.ibkr
        return model.fee(instrument, quantity, price, liquidity)
