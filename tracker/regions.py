"""The one list of regions. Codes are short, lowercase and stable; labels are for people."""

from __future__ import annotations

from django.db import models


class Region(models.TextChoices):
    NORTH_AMERICA = "na", "North America"
    SOUTH_AMERICA = "sa", "South America"
    EUROPE = "eu", "Europe"
    ASIA = "asia", "Asia"
    OCEANIA = "oce", "Oceania"
    AFRICA = "af", "Africa"
    MIDDLE_EAST = "me", "Middle East"
