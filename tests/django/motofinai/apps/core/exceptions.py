"""A stand-in for the Motofinai app's motofinai.apps.core.exceptions (the part
the package meets): its ConcurrencyException is what the package raises."""


class MotofinaiException(Exception):
    status_code = 500
    error_code = "internal_error"
    message = "An unexpected error occurred"

    def __init__(self, message=None, code=None, status_code=None, details=None):
        self.message = message or self.message
        self.error_code = code or self.error_code
        self.status_code = status_code or self.status_code
        self.details = details or []
        super().__init__(self.message)

    def to_response_dict(self):
        return {"success": False, "error": {"code": self.error_code, "message": self.message,
                                            "status_code": self.status_code,
                                            "details": [d.to_dict() for d in self.details]}}


class ConcurrencyException(MotofinaiException):
    status_code = 409
    error_code = "concurrency_error"
    message = "Resource was modified by another user. Please refresh and try again"
