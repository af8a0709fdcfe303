"""`{{ amount|money:currency }}`: money as every screen shows it (`config.money`)."""

from django import template

from config.money import money as format_money

register = template.Library()


@register.filter
def money(amount, currency=""):
    return format_money(amount, currency or "")
