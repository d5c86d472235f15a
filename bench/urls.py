"""The app's routes plus `bench/noop`, the do-nothing DRF view the run compares against."""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import handler404, handler500
from config.urls import urlpatterns as app_urlpatterns

__all__ = ["handler404", "handler500", "urlpatterns"]


class NoopApi(APIView):
    """The ceiling: DRF's request and response machinery with no auth and no work (no
    rate limit either, so what the limiter costs shows in the other figures)."""

    authentication_classes = []
    permission_classes = []
    throttle_classes = []

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


urlpatterns = [*app_urlpatterns, path("bench/noop", NoopApi.as_view())]
