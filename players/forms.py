from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.password_validation import validate_password

from tracker.models import Player, Privacy
from tracker.regions import Region
from tracker.services import player_password_set


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


class PasswordChangeForm(auth_forms.PasswordChangeForm):
    """The password page (Django's PasswordChangeView, which keeps this browser signed in):
    the new password is set through the service, which ends every other session."""

    def save(self, commit: bool = True) -> Player:
        player_password_set(player=self.user, password=self.cleaned_data["new_password1"])
        return self.user


class FriendRequestForm(forms.Form):
    username = forms.CharField(max_length=150, label="Add a friend by username")


class ComparePickForm(forms.Form):
    """What the friends page's compare button sends; anything else names no comparison."""

    game = forms.SlugField(max_length=64)
    a = forms.CharField(max_length=150, validators=[Player.username_validator])
    b = forms.CharField(max_length=150, validators=[Player.username_validator])
