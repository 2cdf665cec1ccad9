import pytest

from inventory.stock import OutOfStock, Stock


def test_restock_adds_up():
    stock = Stock()
    stock.restock("pen", 3, 120)
    stock.restock("pen", 2, 120)
    assert stock.quantity("pen") == 5


def test_sell_returns_takings():
    stock = Stock()
    stock.restock("pen", 3, 120)
    assert stock.sell("pen", 2) == 240
    assert stock.quantity("pen") == 1


def test_cannot_oversell():
    stock = Stock()
    stock.restock("pen", 1, 120)
    with pytest.raises(OutOfStock):
        stock.sell("pen", 2)


def test_total_value_counts_every_unit():
    stock = Stock()
    stock.restock("pen", 3, 120)
    stock.restock("pad", 2, 250)
    assert stock.total_value() == 3 * 120 + 2 * 250
