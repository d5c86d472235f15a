"""Writes a player makes about themself: friends and settings."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from infra.errors import Conflict, Invalid, NotFound
from leaderboards.sync import reindex_player_after_commit
from tracker.models import Friendship, Player


def friend_request(*, sender: Player, receiver: Player) -> Friendship:
    """Ask `receiver` to be friends. If they had already asked `sender`, that is accepted."""
    if sender.pk == receiver.pk:
        raise Invalid("You cannot befriend yourself.", fields={"username": ["That is you."]})
    existing = Friendship.objects.between(sender, receiver).first()
    if existing is not None:
        if existing.status == Friendship.Status.ACCEPTED:
            raise Conflict("You are already friends.")
        if existing.addressee_id == sender.pk:
            return friend_accept(player=sender, friendship=existing)
        raise Conflict("You have already asked; waiting for an answer.")
    try:
        with transaction.atomic():
            return Friendship.objects.create(requester=sender, addressee=receiver)
    except IntegrityError:
        raise Conflict("A request between you two already exists.") from None


def _pending_for(player: Player, friendship_id: int) -> Friendship:
    friendship = Friendship.objects.filter(pk=friendship_id, addressee=player, status=Friendship.Status.PENDING).first()
    if friendship is None:
        raise NotFound("No such pending friend request for you.")
    return friendship


def friend_accept(*, player: Player, friendship: Friendship | int) -> Friendship:
    if isinstance(friendship, int):
        friendship = _pending_for(player, friendship)
    elif friendship.addressee_id != player.pk or friendship.status != Friendship.Status.PENDING:
        raise NotFound("No such pending friend request for you.")
    friendship.status = Friendship.Status.ACCEPTED
    friendship.accepted_at = timezone.now()
    friendship.save(update_fields=["status", "accepted_at"])
    return friendship


def friend_decline(*, player: Player, friendship_id: int) -> None:
    _pending_for(player, friendship_id).delete()


def friend_remove(*, player: Player, other: Player) -> None:
    """End a friendship, or withdraw a request, in either direction."""
    deleted, _ = Friendship.objects.between(player, other).delete()
    if not deleted:
        raise NotFound("You are not friends and have no request pending with that player.")


def player_update_settings(*, player: Player, region: str, privacy: str, email: str) -> Player:
    """Change a player's region, privacy and email. A new region moves them between
    regional boards after commit."""
    moved = player.region != region
    with transaction.atomic():
        player.region, player.privacy = region, privacy
        player.set_email(email)
        player.save(update_fields=["region", "privacy", "email", "email_digest"])
        if moved:
            reindex_player_after_commit(player)
    return player
