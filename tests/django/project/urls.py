from django.contrib import admin
from django.urls import path

from finance import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("loans/<int:pk>/edit/", views.LoanUpdateView.as_view(), name="loan-edit"),
    path("api/loans/<int:pk>/approve/", views.LoanApproveView.as_view(), name="loan-approve"),
]
