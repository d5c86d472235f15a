"""The share card's text stays on the card, however long the names on it."""

from __future__ import annotations

from PIL import Image, ImageDraw

from players.sharecard import TEXT_WIDTH, CardText, draw_card, fitted

LONG = "Cartographer of Every Single Uncharted Corner of the Known Universe and Beyond It"


def a_draw() -> ImageDraw.ImageDraw:
    return ImageDraw.Draw(Image.new("RGB", (10, 10)))


def test_a_short_title_keeps_its_size_and_every_letter() -> None:
    text, font = fitted(a_draw(), "First Flight", 76, smallest=48)
    assert text == "First Flight"
    assert font.size == 76


def test_a_long_title_shrinks_then_ends_in_an_ellipsis_within_the_card() -> None:
    draw = a_draw()
    text, font = fitted(draw, LONG, 76, smallest=48)
    assert font.size == 48
    assert text.endswith("…") and LONG.startswith(text[:-1])
    assert draw.textlength(text, font=font) <= TEXT_WIDTH


def test_a_card_of_long_names_draws() -> None:
    card = CardText(
        title=LONG,
        about="Visit each of the four hundred and twelve star systems without refuelling once.",
        game="Chronicles of the Unreasonably Long Voyage Home: The Director's Extended Edition",
        by="by Commander_Aurelia_Nightingale_of_the_Outer_Rim · December 2, 2026",
        badge="100 pts · COMMON · 100.0% of players",
        tier="common",
    )
    assert draw_card(card).startswith(b"\x89PNG")
