"""The portal link's branding parameters: what each accepts, and that nothing else gets
into a style or an attribute."""

from __future__ import annotations

import pytest

from hookline.domain.branding import Branding, parse
from hookline.domain.errors import InvalidRequest


def test_no_parameters_keep_hookline_s_own_look() -> None:
    """An unbranded link sets no custom property and follows the system's theme."""
    assert parse({}) == Branding() and Branding().css_variables() == {}


@pytest.mark.parametrize(
    ("given", "colour"),
    [("#1F6FEB", "#1f6feb"), ("1f6feb", "#1f6feb"), ("#abc", "#abc"), ("#11223344", "#11223344")],
)
def test_a_hex_colour_is_accepted_with_or_without_its_hash(given: str, colour: str) -> None:
    """``#rgb``, ``#rgba``, ``#rrggbb``, ``#rrggbbaa``, lowercased; the ``#`` is optional."""
    assert parse({"primaryColor": given}).primary == colour


def test_the_dark_primary_falls_back_to_the_primary() -> None:
    """Without ``primaryColorDark`` the dark theme uses ``primaryColor`` too."""
    variables = parse({"primaryColor": "#ff0000"}).css_variables()
    assert variables["--brand-primary-dark"] == "#ff0000"
    dark = parse({"primaryColor": "#ff0000", "primaryColorDark": "#00ff00"}).css_variables()
    assert dark["--brand-primary-dark"] == "#00ff00"


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ({"primaryColor": "red"}, "primaryColor"),
        ({"primaryColor": "#ff0000;}body{display:none"}, "primaryColor"),
        ({"primaryColorDark": "rgb(1,2,3)"}, "primaryColorDark"),
        ({"fontFamily": "Inter;}*{color:red"}, "fontFamily"),
        ({"fontFamily": "</style><script>x</script>"}, "fontFamily"),
        ({"fontFamily": "1980s"}, "fontFamily"),
        ({"fontFamily": ",".join(["A"] * 6)}, "fontFamily"),
        ({"icon": "http://cdn.example.com/logo.png"}, "icon"),
        ({"icon": "javascript:alert(1)"}, "icon"),
        ({"icon": 'https://e.com/a.png" onerror="x'}, "icon"),
        ({"icon": "https://e.com/a.png)"}, "icon"),
        ({"darkMode": "maybe"}, "darkMode"),
        ({"hideNavigation": "yes please"}, "hideNavigation"),
    ],
)
def test_a_value_outside_its_grammar_is_refused_naming_its_parameter(
    query: dict[str, str], name: str
) -> None:
    """Anything but the grammar is an ``InvalidRequest`` located at the parameter."""
    with pytest.raises(InvalidRequest) as refused:
        parse(query)
    assert refused.value.loc == ("query", name) and name in refused.value.detail


def test_font_families_are_unquoted_names_before_the_system_font() -> None:
    """Quotes are dropped and spaces collapsed: CSS reads such names unquoted."""
    font = parse({"fontFamily": "'Inter',  \"Helvetica   Neue\""}).font
    assert font == "Inter, Helvetica Neue, system-ui, sans-serif"


def test_a_loopback_http_logo_is_accepted_in_dev_only() -> None:
    """``--dev`` lets a laptop serve its own logo over http on loopback."""
    url = "http://127.0.0.1:9000/logo.png"
    assert parse({"icon": url}, dev=True).logo == url
    with pytest.raises(InvalidRequest):
        parse({"icon": url})
    with pytest.raises(InvalidRequest):
        parse({"icon": "http://10.0.0.1/logo.png"}, dev=True)


@pytest.mark.parametrize(
    ("value", "theme"), [("true", "dark"), ("false", "light"), ("auto", None), ("AUTO", None)]
)
def test_dark_mode_is_svix_s_true_or_auto(value: str, theme: str | None) -> None:
    """``darkMode=true`` starts dark, ``false`` light, ``auto`` follows the system."""
    assert parse({"darkMode": value}).theme == theme


def test_hide_navigation_is_a_flag() -> None:
    assert parse({"hideNavigation": "true"}).hide_navigation is True
    assert parse({"hideNavigation": "0"}).hide_navigation is False
