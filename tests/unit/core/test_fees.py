from decimal import Decimal

import pytest

from core.fees import FeeSchedule, IbkrFixedFees, KalshiFees, RateFees
from core.instruments import AssetClass, Instrument, Venue
from core.types import Liquidity
from tests.kit.builders import btc, es_future


def ibkr(asset_class: AssetClass, instrument_id: str, multiplier: str = "1") -> Instrument:
    return Instrument(instrument_id=instrument_id, asset_class=asset_class, venue=Venue.IBKR, quote_currency="USD",
                      tick_size=Decimal("0.01"), lot_size=Decimal(1), multiplier=Decimal(multiplier))


KALSHI = Instrument(instrument_id="event_contract:K-1", asset_class=AssetClass.EVENT_CONTRACT, venue=Venue.KALSHI,
                    quote_currency="USD", tick_size=Decimal("0.01"), lot_size=Decimal(1))


def test_kalshi_taker_fee_is_quadratic_and_rounded_up_to_the_cent() -> None:
    # 0.07 * 10 * 0.5 * 0.5 = 0.175 -> 0.18
    assert KalshiFees().fee(KALSHI, Decimal(10), Decimal("0.50"), Liquidity.TAKER) == Decimal("0.18")
    assert KalshiFees().fee(KALSHI, Decimal(10), Decimal("0.50"), Liquidity.MAKER) == Decimal(0)
    makers = KalshiFees(charges_makers=True)
    assert makers.fee(KALSHI, Decimal(100), Decimal("0.50"), Liquidity.MAKER) == Decimal("0.44")


def test_coinbase_rates_apply_to_notional() -> None:
    assert RateFees().fee(btc(), Decimal("0.5"), Decimal(100), Liquidity.TAKER) == Decimal("0.3")
    assert RateFees().fee(btc(), Decimal("0.5"), Decimal(100), Liquidity.MAKER) == Decimal("0.2")


@pytest.mark.parametrize(("shares", "price", "expected"), [
    ("100", "50", "1.00"),      # 0.50 raised to the minimum
    ("1000", "50", "5.00"),     # per share
    ("300", "0.20", "0.60"),    # capped at 1% of value
])
def test_ibkr_stock_commission_min_and_max(shares: str, price: str, expected: str) -> None:
    stock = ibkr(AssetClass.EQUITY, "equity:X")
    assert IbkrFixedFees().fee(stock, Decimal(shares), Decimal(price), Liquidity.TAKER) == Decimal(expected)


def test_ibkr_options_and_futures_are_per_contract() -> None:
    option = ibkr(AssetClass.OPTION, "option:X-C", "100")
    assert IbkrFixedFees().fee(option, Decimal(1), Decimal(5), Liquidity.TAKER) == Decimal("1.00")
    assert IbkrFixedFees().fee(option, Decimal(3), Decimal(5), Liquidity.TAKER) == Decimal("1.95")
    assert IbkrFixedFees().fee(es_future(), Decimal(2), Decimal(6000), Liquidity.TAKER) == Decimal("1.70")


def test_schedule_picks_the_instruments_venue() -> None:
    schedule = FeeSchedule()
    assert schedule.fee(KALSHI, Decimal(10), Decimal("0.5"), Liquidity.TAKER) == Decimal("0.18")
    assert schedule.fee(btc(), Decimal(1), Decimal(100), Liquidity.TAKER) == Decimal("0.6")
