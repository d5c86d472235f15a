"""The preview image of a shared unlock (Open Graph / Twitter card): a 1200×630 PNG."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import textwrap
from collections.abc import Callable
from dataclasses import astuple, dataclass

from django.core.cache import cache
from PIL import Image, ImageDraw, ImageFont

from achievements.models import Unlock
from achievements.selectors import HIDDEN_NAME
from infra.cache import CACHE_ERRORS
from infra.numbers import percent

# Bump when the drawing changes: every cached card is then drawn afresh.
DESIGN = 2
# Cards are keyed by what they show, so this only bounds the memory a card no one asks for
# keeps; a day covers the burst of fetches that follows a link being pasted somewhere.
CARD_CACHE_SECONDS = 24 * 60 * 60
# How long a browser (and, for a card that is the same for everyone, a shared cache) may
# keep the image: a player who goes private or loses the unlock vanishes from them this soon.
CARD_MAX_AGE = 600
WIDTH, HEIGHT = 1200, 630
# Text starts 90 px in and stays 90 px clear of the right edge, inside the panel's border.
LEFT = 90
TEXT_WIDTH = WIDTH - 2 * LEFT
BACKGROUND = (15, 18, 32)
PANEL = (24, 28, 47)
INK = (232, 234, 246)
MUTED = (154, 163, 199)
TIER_COLOURS = {
    "common": (154, 163, 199),
    "uncommon": (79, 209, 139),
    "rare": (124, 156, 255),
    "epic": (190, 120, 255),
    "legendary": (245, 196, 81),
}


def card_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's own font (Aileron), shipped inside Pillow: nothing fetched, nothing to install."""
    return ImageFont.load_default(size=size)


@dataclass(frozen=True)
class CardText:
    """Everything a card shows. The cached image is keyed by all of it, so a change to any
    of it (a renamed player or game, a new unlock percentage, a mask) is a new image, never
    a stale one; who may see the card at all is checked before the cache is asked."""

    title: str
    about: str
    game: str
    by: str
    badge: str
    tier: str

    @classmethod
    def of(cls, unlock: Unlock, *, masked: bool = False) -> CardText:
        """`masked` (a hidden achievement the viewer may not see) leaves out its name and
        description, as every other surface does (`achievements.selectors.Reveal`)."""
        achievement = unlock.achievement
        tier = achievement.rarity
        return cls(
            title=HIDDEN_NAME if masked else achievement.name,
            about="" if masked else achievement.description or "",
            game=unlock.game.name,
            by=f"by {unlock.player.username} · {unlock.unlocked_at:%B %-d, %Y}",
            badge=f"{achievement.points} pts · {tier.upper()} · {percent(achievement.unlock_percentage)} of players",
            tier=tier,
        )

    def cache_key(self) -> str:
        digest = hashlib.sha256(json.dumps([DESIGN, *astuple(self)]).encode()).hexdigest()
        return f"share-card:{digest}"


def card_png(unlock: Unlock, *, masked: bool = False) -> bytes:
    """The card from the cache (Redis in production), drawn and kept on a miss. Drawing
    costs ~100 ms of CPU; a cached card a Redis read. Without the cache it is drawn."""
    text = CardText.of(unlock, masked=masked)
    return cached_png(text.cache_key(), lambda: draw_card(text))


def cached_png(key: str, draw: Callable[[], bytes]) -> bytes:
    """The image kept under `key`, or `draw()` kept there on a miss. `key` must name
    everything the image shows (a card keyed by its content is never stale); a cache that
    does not answer costs a drawing, not an error."""
    try:
        png = cache.get(key)
    except CACHE_ERRORS:
        return draw()
    if png is None:
        png = draw()
        with contextlib.suppress(*CACHE_ERRORS):
            cache.set(key, png, CARD_CACHE_SECONDS)
    return png


def fitted(
    draw: ImageDraw.ImageDraw, text: str, size: int, *, smallest: int, width: int = TEXT_WIDTH, step: int = 4
) -> tuple[str, ImageFont.FreeTypeFont | ImageFont.ImageFont]:
    """`text` and a font to draw it in on one line no wider than `width`: the font
    shrinks by `step`, down to `smallest`, and then the text is cut with an ellipsis. A
    long name (an achievement's, a game's, a player's) would otherwise run off the card."""
    while size > smallest and draw.textlength(text, font=card_font(size)) > width:
        size -= step
    font = card_font(max(size, smallest))
    if draw.textlength(text, font=font) <= width:
        return text, font
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text.rstrip() + "…", font


def draw_card(text: CardText) -> bytes:
    colour = TIER_COLOURS.get(text.tier, MUTED)
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((40, 40, WIDTH - 40, HEIGHT - 40), radius=32, fill=PANEL, outline=colour, width=6)
    draw.text((LEFT, 85), "ACHIEVEMENT UNLOCKED", font=card_font(34), fill=colour)
    title, title_font = fitted(draw, text.title, 76, smallest=48)
    draw.text((LEFT, 140), title, font=title_font, fill=INK)
    for line_number, line in enumerate(textwrap.wrap(text.about, width=58)[:2]):
        draw.text((LEFT, 250 + line_number * 44), line, font=card_font(36), fill=MUTED)
    game, game_font = fitted(draw, text.game, 40, smallest=32)
    draw.text((LEFT, 395), game, font=game_font, fill=INK)
    by, by_font = fitted(draw, text.by, 34, smallest=28)
    draw.text((LEFT, 450), by, font=by_font, fill=MUTED)
    badge_font = card_font(32)
    width = int(draw.textlength(text.badge, font=badge_font))
    draw.rounded_rectangle((90, 510, 90 + width + 40, 570), radius=28, fill=BACKGROUND)
    draw.text((110, 520), text.badge, font=badge_font, fill=colour)
    draw.text((WIDTH - 280, 85), "Questboard", font=card_font(34), fill=MUTED)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
