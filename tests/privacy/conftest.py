from tests.admin.conftest import role_user  # noqa: F401 - the admin tests' staff users, one per role
