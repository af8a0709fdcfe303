"""factory_boy factories for the whole domain. Build histories with these, not fixtures."""

from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from orders.models import Address, Channel, Customer, Order, OrderEvent, OrderLine, Payment, Shipment
from refunds.models import Payout, RefundLine, RefundRequest


class ChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Channel
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"channel-{n}")
    kind = Channel.Kind.WEB_STORE


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    channel = factory.SubFactory(ChannelFactory)
    external_id = factory.Sequence(lambda n: f"C-{n}")
    name = factory.Faker("name")
    phone = factory.Sequence(lambda n: f"+86138{n:08d}")
    email = factory.LazyAttribute(lambda c: f"{c.external_id.lower()}@example.com")


class AddressFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Address

    customer = factory.SubFactory(CustomerFactory)
    name = factory.LazyAttribute(lambda a: a.customer.name)
    line1 = factory.Sequence(lambda n: f"{n} Nanjing Road")
    city = "Shanghai"
    postcode = "200000"
    country = "CN"
    fingerprint = factory.LazyAttribute(
        lambda a: Address.fingerprint_of(line1=a.line1, city=a.city, postcode=a.postcode, country=a.country)
    )


class OrderFactory(factory.django.DjangoModelFactory):
    """A delivered, paid order. Pass `lines=[(sku, qty, unit_price), ...]` to shape it."""

    class Meta:
        model = Order
        skip_postgeneration_save = True

    channel = factory.SubFactory(ChannelFactory)
    customer = factory.SubFactory(CustomerFactory, channel=factory.SelfAttribute("..channel"))
    number = factory.Sequence(lambda n: f"ORD-{n:06d}")
    currency = "CNY"
    placed_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=10))
    state = Order.State.DELIVERED
    paid_at = factory.LazyAttribute(lambda o: o.placed_at)
    shipped_at = factory.LazyAttribute(lambda o: o.placed_at + timedelta(days=1))
    delivered_at = factory.LazyAttribute(lambda o: o.placed_at + timedelta(days=3))

    @classmethod
    def _create(cls, model_class, *args, lines=None, shipping_fee=Decimal("0.00"), with_shipment=True, **kwargs):
        # `state` is protected: set it on the instance before the first save.
        state = kwargs.pop("state")
        order = model_class(*args, shipping_fee=shipping_fee, **kwargs)
        order.__dict__["state"] = state
        total = Decimal("0.00")
        order.save()
        for sku, qty, price in lines or [("SKU-1", 2, Decimal("29.95"))]:
            price = Decimal(price)
            OrderLine.objects.create(
                order=order, sku=sku, name=f"Item {sku}", quantity=qty, unit_price=price, line_total=price * qty
            )
            total += price * qty
        total += shipping_fee
        if state != Order.State.PENDING_PAYMENT:
            Order.objects.filter(pk=order.pk).update(paid_total=total)
            order.paid_total = total
            Payment.objects.create(
                order=order, method="alipay", reference=f"PAY-{order.number}", amount=total, paid_at=order.paid_at
            )
            OrderEvent.objects.create(
                order=order, from_state="pending_payment", to_state="paid", actor="channel", at=order.paid_at
            )
        if with_shipment and state in (Order.State.SHIPPED, Order.State.DELIVERED, Order.State.COMPLETED):
            Shipment.objects.create(
                order=order,
                carrier="sf",
                tracking_number=f"SF{order.pk:010d}",
                shipped_at=order.shipped_at,
                delivered_at=order.delivered_at if state != Order.State.SHIPPED else None,
                last_status="delivered" if state != Order.State.SHIPPED else "in_transit",
            )
        return order


class RefundRequestFactory(factory.django.DjangoModelFactory):
    """A request in any state, built directly (for screens and selectors).

    Tests of the lifecycle must go through `refunds.services` instead.
    """

    class Meta:
        model = RefundRequest
        skip_postgeneration_save = True

    order = factory.SubFactory(OrderFactory)
    channel = factory.SelfAttribute("order.channel")
    customer = factory.SelfAttribute("order.customer")
    idempotency_key = factory.Sequence(lambda n: f"key-{n}")
    kind = RefundRequest.Kind.RETURN_AND_REFUND
    requested_kind = factory.SelfAttribute("kind")
    reason = "size_fit"
    currency = "CNY"
    amount_requested = Decimal("0")

    @classmethod
    def _create(cls, model_class, *args, state=RefundRequest.State.SUBMITTED, **kwargs):
        refund = model_class(*args, **kwargs)
        refund.__dict__["state"] = state
        line = refund.order.lines.order_by("pk").first()
        if not refund.amount_requested:
            refund.amount_requested = line.line_total
        refund.save()
        RefundLine.objects.create(request=refund, order_line=line, quantity=line.quantity, amount=refund.amount_requested)
        return refund


class PayoutFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Payout

    request = factory.SubFactory(RefundRequestFactory, state=RefundRequest.State.READY_FOR_PAYOUT)
    method = "original_payment"
    amount = factory.LazyAttribute(lambda p: p.request.amount_requested)
    currency = "CNY"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "pass-Word-123")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(Group.objects.get(name=extracted))
        if create:
            # Persist the password set above, or force_login's session hash won't match.
            self.save()
