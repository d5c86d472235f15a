from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.password_validation import validate_password

from tracker.models import Privacy
from tracker.regions import Region


class SignupForm(forms.Form):
    username = forms.RegexField(
        regex=r"^[A-Za-z0-9_.-]{3,30}$",
        max_length=30,
        help_text="3–30 letters, digits, _ . or -",
        error_messages={"invalid": "Use 3–30 letters, digits, _ . or -."},
    )
    email = forms.EmailField(max_length=254)
    region = forms.ChoiceField(choices=Region.choices, help_text="Your regional leaderboards.")
    password1 = forms.CharField(label="Password", widget=forms.PasswordInput, min_length=8)
    password2 = forms.CharField(label="Password again", widget=forms.PasswordInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", "The passwords differ.")
        elif data.get("password1"):
            try:
                validate_password(data["password1"])
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return data


class SettingsForm(forms.Form):
    region = forms.ChoiceField(choices=Region.choices)
    privacy = forms.ChoiceField(
        choices=Privacy.choices,
        widget=forms.RadioSelect,
        help_text="Who sees your profile, achievements and statistics. "
        "On leaderboards, hidden players are listed as “Anonymous player”.",
    )
    email = forms.EmailField(max_length=254)


class FriendRequestForm(forms.Form):
    username = forms.CharField(max_length=150, label="Add a friend by username")
