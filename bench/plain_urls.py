"""The plain DRF app's one route: the same path as the app's own do-nothing view."""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class PlainNoop(APIView):
    def get(self, request: Request) -> Response:
        return Response({})


urlpatterns = [path("bench/noop", PlainNoop.as_view())]
