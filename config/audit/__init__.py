"""The one audit log: who changed what, from which value to which, for the models that
govern money and access (policies, risk settings, payout settings, staff roles, channels
and their keys), and the changes that wait for a second admin before they apply.

Built on django-auditlog (one `LogEntry` table for every model, old → new per field, the
actor taken from the request by its middleware), so it works on SQLite as on PostgreSQL.
Apps register their own models with `config.audit.log.register` in `AppConfig.ready`.
"""
