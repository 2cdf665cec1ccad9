"""Stock levels for a small shop: restocking, selling and the value of what is on the shelf."""


class OutOfStock(Exception):
    pass


class Stock:
    def __init__(self):
        self._items = {}  # name -> (quantity, unit price in cents)

    def restock(self, name, quantity, unit_price):
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        held, _ = self._items.get(name, (0, unit_price))
        self._items[name] = (held + quantity, unit_price)

    def sell(self, name, quantity):
        held, price = self._items.get(name, (0, 0))
        if quantity > held:
            raise OutOfStock(f"{name}: {held} left, {quantity} wanted")
        self._items[name] = (held - quantity, price)
        return quantity * price

    def quantity(self, name):
        return self._items.get(name, (0, 0))[0]

    def total_value(self):
        return sum(price for quantity, price in self._items.values())
