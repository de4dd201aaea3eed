"""Enabling the Krita plug-in edits one line of kritarc and nothing else."""
from installers.kritarc import drop_empty_section, get_value, set_value

RC = "[General]\nfoo=1\n\n[python]\nenable_other=true\n\n[MainWindow]\nState=AAAA==\n"


def test_adds_key_inside_existing_section_and_keeps_everything_else():
    out = set_value(RC, "enable_sanet_style", "true")
    assert get_value(out, "enable_sanet_style") == "true"
    assert out.replace("enable_sanet_style=true\n", "") == RC
    assert out.index("enable_sanet_style") < out.index("[MainWindow]")


def test_replaces_a_false_value_once_and_removal_restores():
    rc = RC.replace("enable_other=true", "enable_other=true\nenable_sanet_style=false")
    out = set_value(rc, "enable_sanet_style", "true")
    assert out.count("enable_sanet_style") == 1 and get_value(out, "enable_sanet_style") == "true"
    assert set_value(out, "enable_sanet_style", "false") == rc
    assert set_value(out, "enable_sanet_style", None) == RC


def test_creates_the_section_and_drops_it_again():
    base = "[General]\nfoo=1\n"
    out = set_value(base, "enable_sanet_style", "true")
    assert out == "[General]\nfoo=1\n\n[python]\nenable_sanet_style=true\n"
    assert drop_empty_section(set_value(out, "enable_sanet_style", None)) == base
    assert set_value("", "enable_sanet_style", "true") == "[python]\nenable_sanet_style=true\n"


def test_key_with_same_name_in_another_section_is_left_alone():
    rc = "[other]\nenable_sanet_style=false\n"
    out = set_value(rc, "enable_sanet_style", "true")
    assert out.startswith(rc) and get_value(out, "enable_sanet_style") == "true"


# --- the Flatpak override keyfile is edited the same careful way ----------------------------------------------
from installers.flatpak import grant, has_grant, overrides_file, revoke  # noqa: E402

USER_OVERRIDE = "[Context]\nshared=network;\nfilesystems=host;\n\n[Environment]\nGIMP_DEBUG=1\n"


def test_flatpak_grant_is_added_and_revoked_without_touching_user_overrides():
    out = grant(USER_OVERRIDE)
    assert has_grant(out) and "filesystems=host;xdg-run/sanet-style;" in out
    assert grant(out) == out
    assert revoke(out) == USER_OVERRIDE


def test_flatpak_grant_in_a_new_file_and_a_user_negation_replaced():
    assert grant("") == "[Context]\nfilesystems=xdg-run/sanet-style;\n"
    assert revoke(grant("")) == ""
    assert grant("[Context]\nfilesystems=!xdg-run/sanet-style;\n") == "[Context]\nfilesystems=xdg-run/sanet-style;\n"


def test_flatpak_overrides_location():
    assert overrides_file("org.gimp.GIMP", "/home/ann", {}) == "/home/ann/.local/share/flatpak/overrides/org.gimp.GIMP"
    assert overrides_file("org.kde.krita", "/h", {"XDG_DATA_HOME": "/d"}) == "/d/flatpak/overrides/org.kde.krita"
