"""The profile card a player pastes anywhere: forum signatures, stream overlays, READMEs.

`/players/<username>/card.svg` and `card.png` (docs/pages.md, "The profile card"). One
drawing model: `layout` places rounded boxes and one-line texts once, and `svg` and
`draw_png` only paint them, so both formats always show the same thing.

A card is the same for every viewer, so browsers and shared caches may keep it: only a
player whom anyone may see has one (`has_card`), and a hidden achievement on it is masked
as for an anonymous viewer. Its ETag is a digest of exactly what it shows (`CardFacts`),
its theme, its format and DESIGN, computed from a few small reads without drawing; a PNG
is drawn only on a miss and kept in the cache under that digest.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import asdict, dataclass, field
from html import escape

import PIL
from django.db.models import Count
from django.http import HttpRequest
from django.urls import reverse
from PIL import Image, ImageDraw

from achievements.models import Award, Unlock
from achievements.selectors import HIDDEN_NAME, reveal_for
from infra.numbers import percent
from leaderboards import selectors as boards
from leaderboards.boards import Board
from players import selectors
from players.sharecard import TIER_COLOURS, cached_png, card_font, fitted
from tracker.auth import EVERYONE, Visibility, visibility
from tracker.models import Player

# Bump when the drawing changes: every ETag changes with it, so no cache keeps the old one.
DESIGN = 1
# How long a browser or shared cache may keep a card without asking again: a new unlock
# shows within five minutes, and a player who goes private drops out of caches as soon.
# Asking again is cheap: a 304 costs a few small reads and draws nothing.
CARD_MAX_AGE = 300
# Logical size, the SVG's; the PNG is drawn at PNG_SCALE times it (1200×630, the Open
# Graph size, sharp on high-density screens). 1.91:1 is the ratio link previews crop to.
WIDTH, HEIGHT = 600, 315
PNG_SCALE = 2
PAD = 36
INNER = WIDTH - 2 * PAD
# Generic families only: an SVG shown as an image fetches nothing, and a reader's own
# system font is as good as any for a name and some numbers.
FONT_FAMILY = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
CONTENT_TYPES = {"svg": "image/svg+xml; charset=utf-8", "png": "image/png"}


@dataclass(frozen=True)
class Palette:
    background: str
    panel: str
    border: str
    tile: str
    ink: str
    muted: str
    accent: str
    tiers: dict[str, str] = field(hash=False)


THEMES = {
    "light": Palette(
        background="#eef1f8",
        panel="#ffffff",
        border="#d5dbee",
        tile="#f3f5fb",
        ink="#161a2e",
        muted="#566088",
        accent="#3552d4",
        tiers={
            "common": "#566088",
            "uncommon": "#1d8a55",
            "rare": "#3552d4",
            "epic": "#8a3fd1",
            "legendary": "#a86f00",
        },
    ),
    # The site's own colours (static/css/questboard.css) and the share card's tiers.
    "dark": Palette(
        background="#0f1220",
        panel="#181c2f",
        border="#2a3050",
        tile="#20253d",
        ink="#e8eaf6",
        muted="#9aa3c7",
        accent="#7c9cff",
        tiers={tier: "#{:02x}{:02x}{:02x}".format(*rgb) for tier, rgb in TIER_COLOURS.items()},
    ),
}
DEFAULT_THEME = "light"


# --- Who has a card, and what it shows ----------------------------------------------------


def has_card(player: Player) -> bool:
    """Whether `player` has a card. A card is pasted anywhere, fetched by anyone and kept
    by shared caches, so it exists only for a player anyone may see (`tracker.auth.
    visibility` of EVERYONE: a public profile) who is active and not hidden from the boards
    by moderation (the card shows a global rank the boards withhold from a hidden player).
    Whoever asks, the owner included, gets the same answer: an image has no viewer."""
    return player.is_active and not player.boards_hidden and visibility(EVERYONE, player) is Visibility.ALL


def card_player(username: str) -> Player | None:
    """The player named (ignoring case, as profiles), if they have a card; None otherwise,
    alike for an unknown name and a hidden player, so a card URL tells nothing more."""
    player = Player.objects.filter(username__iexact=username).first()
    return player if player is not None and has_card(player) else None


@dataclass(frozen=True)
class Rarest:
    """The rarest achievement a player holds, as anyone may see it."""

    name: str
    game: str
    share: str
    tier: str

    @classmethod
    def of(cls, unlock: Unlock) -> Rarest:
        """A hidden achievement is masked as for an anonymous viewer
        (`achievements.selectors.Reveal`), whoever looks: the card is one image for
        everyone. Its game, unlock percentage and rarity stay, as on every masked surface."""
        achievement = unlock.achievement
        masked = reveal_for(EVERYONE, [achievement]).masks(achievement)
        return cls(
            name=HIDDEN_NAME if masked else achievement.name,
            game=unlock.game.name,
            share=percent(achievement.unlock_percentage),
            tier=achievement.rarity,
        )


@dataclass(frozen=True)
class CardFacts:
    """Everything a card shows, and nothing else: the ETag is a digest of it, so any change
    on the card (a new unlock, a rank moved, a refreshed unlock percentage, an award) is a
    new ETag, and the same facts are the same ETag."""

    username: str
    points: int
    achievements: int
    rank: int | None
    mastered: int
    beaten: int
    rarest: Rarest | None

    def etag(self, *, theme: str, kind: str) -> str:
        """A strong ETag: equal exactly when the bytes are. A PNG's bytes also depend on
        the Pillow that drew them, so its version is part of a PNG's tag."""
        drawn_by = PIL.__version__ if kind == "png" else None
        document = json.dumps([DESIGN, kind, theme, drawn_by, asdict(self)], sort_keys=True)
        return f'"{hashlib.sha256(document.encode()).hexdigest()[:40]}"'

    def summary(self) -> str:
        """The card in one sentence: its SVG title, read by screen readers."""
        rank = f"rank #{self.rank:,} global" if self.rank else "unranked"
        rarest = (
            f"; rarest: {self.rarest.name} ({self.rarest.game}, {self.rarest.share} of players)" if self.rarest else ""
        )
        return (
            f"{self.username} on Questboard: {self.points:,} points, {self.achievements:,} achievements, "
            f"{rank}, {self.mastered:,} mastered, {self.beaten:,} beaten{rarest}"
        )


def facts_of(player: Player) -> CardFacts:
    """What `player`'s card shows: three small reads and a rank (the rank index, or SQL
    when it is not available: `leaderboards.selectors`). Totals are the global board's
    row, so points and rank always agree."""
    totals = selectors.totals(player)
    awards = dict(
        Award.objects.filter(player=player).order_by().values("kind").annotate(n=Count("id")).values_list("kind", "n")
    )
    rarest = selectors.rarest_unlocks(player, limit=1)
    return CardFacts(
        username=player.username,
        points=totals.points if totals else 0,
        achievements=totals.achievement_count if totals else 0,
        rank=boards.rank_on(Board.everywhere(), player.pk),
        mastered=awards.get(Award.Kind.MASTERED, 0),
        beaten=awards.get(Award.Kind.BEATEN, 0),
        rarest=Rarest.of(rarest[0]) if rarest else None,
    )


# --- One drawing model ----------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    """A filled rounded rectangle, in logical pixels."""

    x: float
    y: float
    width: float
    height: float
    radius: float
    fill: str
    outline: str = ""


@dataclass(frozen=True)
class Text:
    """One line of text; `y` is its baseline, `x` its start (its end when `end`). Already
    fitted: it is no wider than the room it was given."""

    x: float
    y: float
    text: str
    size: int
    colour: str
    bold: bool = False
    end: bool = False


Shape = Box | Text
TILE_GAP = 12
TILE_WIDTH = (INNER - 3 * TILE_GAP) / 4
# Bold is drawn thicker than it is measured: leave it room.
BOLD_ALLOWANCE = 4


def layout(facts: CardFacts, theme: str) -> list[Shape]:
    """The card as shapes, for both formats. Text is fitted with the PNG's font (Pillow's
    Aileron): a long name shrinks and then ends in an ellipsis, on both formats alike."""
    colours = THEMES[theme]
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def line(
        x: float, y: float, text: str, size: int, colour: str, *, room: float, smallest: int, bold: bool = False
    ) -> Text:
        fit, font = fitted(measure, text, size, smallest=smallest, width=int(room) - BOLD_ALLOWANCE * bold, step=2)
        return Text(x, y, fit, int(font.size), colour, bold=bold)

    rank = f"#{facts.rank:,} global" if facts.rank else "Unranked"
    shapes: list[Shape] = [
        Box(0, 0, WIDTH, HEIGHT, 0, colours.background),
        Box(8, 8, WIDTH - 16, HEIGHT - 16, 18, colours.panel, colours.border),
        Text(PAD, 50, "QUESTBOARD", 13, colours.muted, bold=True),
        Text(WIDTH - PAD, 50, rank, 15, colours.accent, bold=True, end=True),
        line(PAD, 94, facts.username, 34, colours.ink, room=INNER, smallest=18, bold=True),
    ]
    tiles = [
        (facts.points, "POINTS"),
        (facts.achievements, "ACHIEVEMENTS"),
        (facts.mastered, "MASTERED"),
        (facts.beaten, "BEATEN"),
    ]
    for number, (value, label) in enumerate(tiles):
        x = PAD + number * (TILE_WIDTH + TILE_GAP)
        room = TILE_WIDTH - 24
        shapes += [
            Box(x, 114, TILE_WIDTH, 80, 10, colours.tile),
            line(x + 12, 152, f"{value:,}", 26, colours.ink, room=room, smallest=12, bold=True),
            line(x + 12, 180, label, 11, colours.muted, room=room, smallest=8),
        ]
    shapes.append(Text(PAD, 226, "RAREST ACHIEVEMENT", 11, colours.muted, bold=True))
    if facts.rarest is None:
        shapes.append(Text(PAD, 258, "None yet", 16, colours.muted))
        return shapes
    rarest = facts.rarest
    about = f"{rarest.game} · {rarest.share} of players · {rarest.tier.capitalize()}"
    return [
        *shapes,
        Box(PAD, 236, 4, 44, 2, colours.tiers.get(rarest.tier, colours.muted)),
        line(PAD + 14, 256, rarest.name, 18, colours.ink, room=INNER - 14, smallest=11, bold=True),
        line(PAD + 14, 277, about, 13, colours.muted, room=INNER - 14, smallest=9),
    ]


# Characters XML 1.0 forbids even as references (most C0 controls, unpaired surrogates):
# an achievement name holding one would make the whole SVG unreadable, so they are dropped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """`text` safe in SVG element content and attribute values: every `<`, `&` and quote
    escaped, so a name is always text and never markup."""
    return escape(_NOT_XML.sub("", text), quote=True)


def svg(facts: CardFacts, theme: str) -> str:
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="card-title">',
        f'<title id="card-title">{xml_text(facts.summary())}</title>',
        f'<g font-family="{xml_text(FONT_FAMILY)}">',
    ]
    for shape in layout(facts, theme):
        if isinstance(shape, Box):
            outline = f' stroke="{shape.outline}" stroke-width="1"' if shape.outline else ""
            parts.append(
                f'<rect x="{shape.x:g}" y="{shape.y:g}" width="{shape.width:g}" height="{shape.height:g}" '
                f'rx="{shape.radius:g}" fill="{shape.fill}"{outline}/>'
            )
        else:
            weight = ' font-weight="700"' if shape.bold else ""
            anchor = ' text-anchor="end"' if shape.end else ""
            parts.append(
                f'<text x="{shape.x:g}" y="{shape.y:g}" font-size="{shape.size}" fill="{shape.colour}"{weight}{anchor}>'
                f"{xml_text(shape.text)}</text>"
            )
    parts += ["</g>", "</svg>"]
    return "\n".join(parts) + "\n"


def draw_png(facts: CardFacts, theme: str) -> bytes:
    scale = PNG_SCALE
    image = Image.new("RGB", (WIDTH * scale, HEIGHT * scale), THEMES[theme].background)
    draw = ImageDraw.Draw(image)
    for shape in layout(facts, theme):
        if isinstance(shape, Box):
            corners = (shape.x, shape.y, shape.x + shape.width, shape.y + shape.height)
            draw.rounded_rectangle(
                [c * scale for c in corners],
                radius=shape.radius * scale,
                fill=shape.fill,
                outline=shape.outline or None,
                width=scale if shape.outline else 0,
            )
        else:
            # Pillow ships one weight: bold is the same letters with an outline of their own colour.
            draw.text(
                (shape.x * scale, shape.y * scale),
                shape.text,
                font=card_font(shape.size * scale),
                fill=shape.colour,
                anchor="rs" if shape.end else "ls",
                stroke_width=1 if shape.bold else 0,
                stroke_fill=shape.colour,
            )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def png(facts: CardFacts, theme: str) -> bytes:
    """The PNG from the cache under its ETag (what it shows), drawn and kept on a miss."""
    tag = facts.etag(theme=theme, kind="png").strip('"')
    return cached_png(f"profile-card:{tag}", lambda: draw_png(facts, theme))


# --- The snippets to paste --------------------------------------------------------------------


@dataclass(frozen=True)
class Embed:
    """A player's card and profile as absolute URLs, and the snippets that paste them:
    Markdown and HTML show the SVG (sharp at any size, READMEs and pages take it), BBCode
    the PNG (forums seldom allow SVG)."""

    profile: str
    svg: str
    png: str
    markdown: str
    html: str
    bbcode: str


def embed_of(request: HttpRequest, player: Player) -> Embed:
    """URLs on the host this request came to (checked against ALLOWED_HOSTS; the scheme
    from SECURE_PROXY_SSL_HEADER behind a proxy), as the share page's are."""
    profile = request.build_absolute_uri(reverse("profile-page", args=[player.username]))
    svg_url = request.build_absolute_uri(reverse("profile-card-svg", args=[player.username]))
    png_url = request.build_absolute_uri(reverse("profile-card-png", args=[player.username]))
    alt = f"{player.username} on Questboard"
    return Embed(
        profile=profile,
        svg=svg_url,
        png=png_url,
        markdown=f"[![{_markdown_text(alt)}]({svg_url})]({profile})",
        # Text to copy (the page escapes it again where it shows it), not markup of this page.
        html=(
            f'<a href="{escape(profile)}"><img src="{escape(svg_url)}" alt="{escape(alt)}" '
            f'width="{WIDTH}" height="{HEIGHT}"></a>'
        ),
        bbcode=f"[url={profile}][img]{png_url}[/img][/url]",
    )


def _markdown_text(text: str) -> str:
    return re.sub(r"([\\\[\]])", r"\\\1", text)
