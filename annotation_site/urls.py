from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from evaluation import views as evaluation_views

admin.site.site_header = "factpair administration"
admin.site.site_title = "factpair"

urlpatterns = [
    path("", evaluation_views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
