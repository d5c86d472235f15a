"""Core models shared by every domain app: players, games and game API keys."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from rest_framework_api_key.models import AbstractAPIKey

from infra import crypto
from tracker.regions import Region


class Privacy(models.TextChoices):
    PUBLIC = "public", "Public"
    FRIENDS = "friends", "Friends only"
    PRIVATE = "private", "Private"


class Source(models.TextChoices):
    """Who reported an unlock or a play session."""

    GAME_SERVER = "server", "Game server (API key)"
    PLAYER_CLIENT = "client", "Game client (player token)"
    ADMIN = "admin", "Admin"
    DEMO = "demo", "Demo data"


class PlayerManager(UserManager):
    def with_email(self, email: str) -> models.QuerySet[Player]:
        """Players with this email (it is not unique: docs/players.md, "Sign-up")."""
        return self.filter(email_digest=crypto.digest(email))


class Player(AbstractUser):
    """A person with one profile across every game. Also the Django user model."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Encrypted at rest; `email_digest` keeps it findable. Not unique, as in Django's own
    # user model: sign-up must not tell a stranger which addresses have an account.
    email = crypto.EncryptedTextField(blank=True, default="")
    email_digest = models.CharField(max_length=64, blank=True, default="", editable=False, db_index=True)
    region = models.CharField(max_length=8, choices=Region.choices, blank=True, default="")
    privacy = models.CharField(max_length=8, choices=Privacy.choices, default=Privacy.PUBLIC)
    # Set by moderation (leaderboards.services.hide_player): off every board, unlocks kept.
    boards_hidden = models.BooleanField(default=False, editable=False)
    # Every player token carries the generation it was issued in; ending every session
    # (tracker.services.player_sessions_end, deactivation) moves it on, so all of them stop
    # working at once (tracker.auth.check_token_current). The database default keeps the
    # set-based loaders that insert players by hand (bench/load.py) working.
    session_generation = models.PositiveIntegerField(default=0, db_default=0, editable=False)
    created = models.DateTimeField(auto_now_add=True)

    objects = PlayerManager()

    class Meta:
        constraints = [models.UniqueConstraint(Lower("username"), name="player_username_ci_unique")]

    def __str__(self) -> str:
        return self.username

    def set_email(self, email: str) -> None:
        self.email = email.strip()
        self.email_digest = crypto.digest(self.email) if self.email else ""


class Game(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True, default="")
    # Kept by the manifest import so completion needs no count(*) on the unlock path.
    achievement_count = models.PositiveIntegerField(default=0, editable=False)
    total_points = models.PositiveIntegerField(default=0, editable=False)
    # Of `achievement_count`, those typed progression and win condition, kept by the
    # manifest import too: the beaten award's condition (docs/awards.md).
    progression_count = models.PositiveIntegerField(default=0, db_default=0, editable=False)
    win_condition_count = models.PositiveIntegerField(default=0, db_default=0, editable=False)
    # The achievement_count every player's completion was last recomputed for: when it
    # lags, a background recompute is due (stats.tasks.refresh_completion).
    completion_basis = models.PositiveIntegerField(default=0, editable=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class GameKey(AbstractAPIKey):
    """A game server's API key. Only a SHA-512 hash of the key is stored."""

    game = models.ForeignKey(Game, on_delete=models.CASCADE, related_name="keys")
    # Blank: RATE_LIMIT_GAME_KEY. A studio whose fleet needs more gets its own (infra/ratelimits.py).
    requests_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Requests per minute this key may make; blank for the default (RATE_LIMIT_GAME_KEY, docs/rate-limits.md).",
    )

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "game API key"
        verbose_name_plural = "game API keys"


class FriendshipQuerySet(models.QuerySet):
    def between(self, a: Player, b: Player) -> FriendshipQuerySet:
        return self.filter(models.Q(requester=a, addressee=b) | models.Q(requester=b, addressee=a))

    def accepted(self) -> FriendshipQuerySet:
        return self.filter(status=Friendship.Status.ACCEPTED)

    def are_friends(self, a: Player, b: Player) -> bool:
        return self.between(a, b).accepted().exists()


class Friendship(models.Model):
    """A friend request from `requester` to `addressee`; friends once accepted."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"

    requester = models.ForeignKey(Player, on_delete=models.CASCADE, related_name="friend_requests_sent")
    addressee = models.ForeignKey(Player, on_delete=models.CASCADE, related_name="friend_requests_received")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True)

    objects = FriendshipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["requester", "addressee"], name="friendship_once_per_pair"),
            models.CheckConstraint(condition=~models.Q(requester=models.F("addressee")), name="friendship_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.requester_id} → {self.addressee_id} ({self.status})"


class Notification(models.Model):
    """Something that happened to a player, kept so it can be shown later (the dashboard)
    as well as pushed live: rival alerts, rank changes."""

    class Kind(models.TextChoices):
        RIVAL = "rival", "A friend passed you"

    player = models.ForeignKey(Player, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    payload = models.JSONField(default=dict)
    created = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["player", "-created"], name="notification_recent")]

    def __str__(self) -> str:
        return f"{self.kind} for {self.player_id}"


class OutboxEvent(models.Model):
    """Work that must follow a committed write (live events, rank index upkeep), recorded
    in that write's own transaction and relayed by `infra.outbox`: in order, at least
    once, so a Redis or broker outage delays it and loses none."""

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=32)
    payload = models.JSONField()
    created = models.DateTimeField()

    class Meta:
        verbose_name = "outbox event"
        indexes = [models.Index(fields=["kind", "id"], name="outbox_pending")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"


class GameMember(models.Model):
    """A developer account that works on a game (studio membership, set by superusers in
    the admin): it reads that game's analytics, and in the admin sees only its games."""

    game = models.ForeignKey(Game, on_delete=models.CASCADE, related_name="members")
    player = models.ForeignKey(Player, on_delete=models.CASCADE, related_name="memberships")
    added = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["game", "player"], name="member_once_per_game")]

    def __str__(self) -> str:
        return f"{self.player} on {self.game}"
