"""The four Lambda functions of the order workflow (config/state-machines/order.asl.json).

Each runs in its own AWS Lambda Runtime Interface Emulator, e.g.
    aws-lambda-rie --runtime-interface-emulator-address 127.0.0.1:9101 \
        --runtime-api-address 127.0.0.1:9201 python3 -m awslambdaric orders.validate_order
(run.sh beside this file starts all four). A raised exception is a function error:
Step Functions sees Error = the exception's class name, Cause = the error payload.
"""

import hashlib


class InvalidOrder(Exception):
    pass


class OutOfStock(Exception):
    pass


class PaymentDeclined(Exception):
    pass


def _digits(order_id, n):
    """A stable number derived from the order id (so results can be checked)."""
    return int(hashlib.sha256(order_id.encode()).hexdigest(), 16) % (10 ** n)


def validate_order(event, context):
    """ValidateOrder: {orderId, customerId, total} -> {valid, checks}."""
    if not event.get("customerId"):
        raise InvalidOrder(f"order {event.get('orderId')} has no customer")
    total = event.get("total")
    if not isinstance(total, (int, float)) or total <= 0:
        raise InvalidOrder(f"order {event.get('orderId')} has total {total!r}")
    return {"valid": True, "checks": ["customer", "total"]}


def reserve_inventory(event, context):
    """ReserveInventory: {orderId, skus} -> {reservationId, skus}; a SKU starting OOS is out of stock."""
    skus = event.get("skus") or []
    missing = [s for s in skus if str(s).startswith("OOS")]
    if missing:
        raise OutOfStock(f"no stock for {', '.join(missing)}")
    return {"reservationId": f"RES-{_digits(event['orderId'], 6):06d}", "skus": skus}


def charge_customer(event, context):
    """ChargeCustomer: {orderId, amount, currency, method} -> {transactionId, amount, currency}."""
    if event.get("method") == "declined-card":
        raise PaymentDeclined("the card was declined")
    return {
        "transactionId": f"TXN-{_digits(event['orderId'], 8):08d}",
        "amount": event["amount"],
        "currency": event.get("currency", "EUR"),
    }


def ship_order(event, context):
    """ShipOrder: {orderId, address} -> {trackingNumber, country}."""
    address = event.get("address") or {}
    return {
        "trackingNumber": f"1Z{_digits(event['orderId'], 10):010d}",
        "country": address.get("country"),
    }
