"""The preview image of a shared unlock (Open Graph / Twitter card): a 1200×630 PNG."""

from __future__ import annotations

import io
import textwrap

from PIL import Image, ImageDraw, ImageFont

from achievements.models import Unlock

WIDTH, HEIGHT = 1200, 630
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


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def render_card(unlock: Unlock) -> bytes:
    achievement = unlock.achievement
    tier = achievement.rarity
    colour = TIER_COLOURS.get(tier, MUTED)
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((40, 40, WIDTH - 40, HEIGHT - 40), radius=32, fill=PANEL, outline=colour, width=6)
    draw.text((90, 85), "ACHIEVEMENT UNLOCKED", font=_font(34), fill=colour)
    draw.text((90, 140), achievement.name[:40], font=_font(76), fill=INK)
    description = textwrap.wrap(achievement.description or "", width=58)[:2]
    for line_number, line in enumerate(description):
        draw.text((90, 250 + line_number * 44), line, font=_font(36), fill=MUTED)
    draw.text((90, 395), f"{unlock.game.name}", font=_font(40), fill=INK)
    draw.text((90, 450), f"by {unlock.player.username} · {unlock.unlocked_at:%B %-d, %Y}", font=_font(34), fill=MUTED)
    badge = f"{achievement.points} pts · {tier.upper()} · {achievement.unlock_percentage:.1f}% of players"
    badge_font = _font(32)
    width = int(draw.textlength(badge, font=badge_font))
    draw.rounded_rectangle((90, 510, 90 + width + 40, 570), radius=28, fill=BACKGROUND)
    draw.text((110, 520), badge, font=badge_font, fill=colour)
    draw.text((WIDTH - 280, 85), "Questboard", font=_font(34), fill=MUTED)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
