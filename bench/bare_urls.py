"""The product's URLs plus `POST /bench/bare/`: a bare DRF endpoint that inserts one row.

It is the framework's floor for the API benchmark: the same channel-key authentication and
JSON parsing as the real API, then one INSERT into `bench_bare`, a table the bench script
creates in its own database (it is not part of any migration).
"""

from django.db import connection
from django.urls import path
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as product_urlpatterns


class BareInsert(APIView):
    parser_classes = [JSONParser]

    def post(self, request):
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_bare (body) VALUES (%s) RETURNING id", [str(request.data)[:200]])
            (row_id,) = cursor.fetchone()
        return Response({"id": row_id}, status=201)


urlpatterns = [path("bench/bare/", BareInsert.as_view()), *product_urlpatterns]
