"""A stand-in for the Motofinai app's ExceptionHandlingMiddleware: its
exceptions become JSON responses with their status (409 for a conflict)."""
from django.http import JsonResponse

from motofinai.apps.core.exceptions import MotofinaiException


class ExceptionHandlingMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exc):
        if isinstance(exc, MotofinaiException):
            return JsonResponse(exc.to_response_dict(), status=exc.status_code)
        return None
