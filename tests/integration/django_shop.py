"""A Django 5 app with related models, run as its own process the way one request of a web
app would be: it has no selfheal integration, so its errors reach selfheal only through the
server's log. Prints the unit of work's output as JSON, or the SQLSTATE it failed with.

    python -m tests.integration.django_shop HOST PORT DBNAME USER [--ahead]
"""

import json
import sys

import django
from django.conf import settings


def configure(host: str, port: str, name: str, user: str) -> None:
    settings.configure(
        DATABASES={"default": {"ENGINE": "django.db.backends.postgresql", "HOST": host, "PORT": port,
                               "NAME": name, "USER": user}},
        INSTALLED_APPS=[], USE_TZ=True, DEFAULT_AUTO_FIELD="django.db.models.AutoField")
    django.setup()


def models(ahead: bool):
    from django.db import models as m

    class Customer(m.Model):
        name = m.TextField()
        tier = m.TextField()

        class Meta:
            app_label, db_table, managed = "shop", "customers", False

    fields = {
        "__module__": __name__,
        "customer": m.ForeignKey(Customer, on_delete=m.PROTECT),  # column customer_id
        "status": m.TextField(),
        "total": m.DecimalField(max_digits=10, decimal_places=2),
        "Meta": type("Meta", (), {"app_label": "shop", "db_table": "orders", "managed": False}),
    }
    if ahead:
        fields["gift_wrap"] = m.BooleanField(default=False)
        fields["preferences"] = m.JSONField(default=dict)
    return Customer, type("Order", (m.Model,), fields)


def workload(ahead: bool) -> list:
    """The same unit of work as the SQLAlchemy app's: a join, a filter, a write, a count."""
    from django.db import transaction

    _, Order = models(ahead)
    out = [[o.id, o.customer.name, o.status, str(o.total)] + ([o.gift_wrap, o.preferences] if ahead else [])
           for o in Order.objects.select_related("customer").filter(status="paid").order_by("id")]
    with transaction.atomic():
        order = Order.objects.get(pk=2)
        order.status = "paid"
        if ahead:
            order.gift_wrap = True
        order.save()
    out.append(Order.objects.filter(status="paid").count())
    if ahead:
        out.append(Order.objects.filter(gift_wrap=False).count())
    return out


def main(argv: list[str]) -> int:
    host, port, name, user = argv[:4]
    configure(host, port, name, user)
    from django.db import DatabaseError

    try:
        print(json.dumps({"output": workload("--ahead" in argv)}))
    except DatabaseError as error:
        cause = error.__cause__
        print(json.dumps({"sqlstate": getattr(cause, "sqlstate", None), "error": str(error)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
