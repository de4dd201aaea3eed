from sanet_client.naming import result_name


def test_result_names_read_the_same_in_every_editor():
    assert result_name(["Starry Night"]) == "Style: Starry Night (SANet)"
    assert result_name(["a", "b"], model="AdaAttN", alpha=0.8, preview=True) == "Style: a + b (AdaAttN, α 0.80, preview)"
    assert result_name(["a", "b", "c", "d"], preserve_color=True, semantic=True) == \
        "Style: a + b + c + … (SANet, colours kept, semantic)"
    assert result_name([], model="") == "Style: style"


def test_the_model_choice_reads_the_same_in_every_editor():
    from sanet_client import naming
    assert [(m, k) for m, k, _ in naming.MODEL_CHOICES] == [("sanet", "sampled"), ("adaattn", "sampled"),
                                                          ("adaattn", "all")]
    assert [t for _, _, t in naming.model_choices(None)] == ["SANet", "AdaAttN", "AdaAttN full attention"]
    assert [t for _, _, t in naming.model_choices(["adaattn"])] == ["SANet (not installed)", "AdaAttN",
                                                                   "AdaAttN full attention"]
    assert naming.model_choice("sanet", "all") == ("sanet", "sampled")       # SANet has no key subsampling
    assert naming.model_choice(None, None) == ("sanet", "sampled")
    assert naming.model_choice("AdaAttN", "all") == ("adaattn", "all")
    for bad in (("adain", "sampled"), ("adaattn", "most")):
        try:
            naming.model_choice(*bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad} was accepted")


def test_the_quality_choice_reads_the_same_in_every_editor():
    from sanet_client import naming
    from sanet_client import protocol as P
    assert [q for q, _, _ in naming.quality_choices("bf16")] == list(P.QUALITIES) == ["exact", "fast"]
    assert naming.quality_choices("bf16") == [("exact", "Exact", True), ("fast", "Fast", True)]
    assert naming.quality_choices(None) == [("exact", "Exact", True), ("fast", "Fast", False)]
    assert naming.quality_choices(None, known=False)[1][2] is True     # not known yet: offered
    assert naming.quality_choice("") == "exact" and naming.quality_choice("FAST") == "fast"
    assert [naming.is_fast(p) for p in ("bf16", "fp16", "fp32", "auto", None, "fp64")] == \
        [True, True, False, False, False, False]
    assert naming.result_name(["a"], precision="bf16") == "Style: a (SANet, fast)"
    assert naming.result_name(["a"], precision="bf16", preview=True) == "Style: a (SANet, preview)"
    assert naming.result_name(["a"], precision="fp32") == "Style: a (SANet)"
    assert P.hello_precision_for_quality({"capabilities": {"precisions": ["auto", "fp32", "bf16"],
                                                           "fast_precision": "bf16"}}, "fast") == "bf16"
    assert P.hello_precision_for_quality({"capabilities": {"precisions": ["auto", "fp32"],
                                                           "fast_precision": None}}, "fast") == "auto"
    assert P.hello_precision_for_quality({}, "fast") is None and P.hello_precision_for_quality(None, "exact") is None
def test_installed_variants_are_entries_of_their_own():
    """The Krita docker's and GIMP dialog's Model row from hello: a variant MODEL:NAME follows the models, named
    by its display name (hello's, or "SANet · NAME"); an invalid name in a hello is left out."""
    from sanet_client import naming
    from sanet_client import protocol as P
    hello = {"features": ["models"], "models": [
        {"name": "sanet", "title": "SANet (Park & Lee, CVPR 2019)", "loaded": True},
        {"name": "sanet:ink", "title": "SANet — ink", "loaded": False, "base": "sanet", "display": "SANet · Ink wash"},
        {"name": "adaattn:x", "title": "AdaAttN — x", "loaded": False},            # a daemon without display
        {"name": "sanet:Bad Name", "title": "?", "loaded": False}]}
    listed = P.hello_models(hello)
    assert [(m["name"], m["base"], m["display"]) for m in listed] == [
        ("sanet", "sanet", "SANet"), ("sanet:ink", "sanet", "SANet · Ink wash"), ("adaattn:x", "adaattn", "AdaAttN · x")]
    rows = naming.model_choices(listed)                       # the dicts (display names)
    assert rows[3:] == [("sanet:ink", "sampled", "SANet · Ink wash"), ("adaattn:x", "sampled", "AdaAttN · x"),
                        ("adaattn:x", "all", "AdaAttN · x full attention")]
    names = naming.model_choices([m["name"] for m in listed])  # the names (as the editors keep them)
    assert [r[:2] for r in names] == [r[:2] for r in rows] and names[3][2] == "SANet · ink"
    assert naming.model_choice("adaattn:x", "all") == ("adaattn:x", "all")
    assert naming.model_choice("SANet:ink", None) == ("sanet:ink", "sampled")
    for bad in ("sanet:", "sanet:Ink", "adain:ink", "sanet:" + "a" * 65):
        assert P.model_problem(bad)
        try:
            naming.model_choice(bad, None)
        except ValueError:
            continue
        raise AssertionError(f"{bad} was accepted")
    assert P.model_problem("sanet:" + "a" * 64) is None and P.model_problem("adaattn:v1.2_b-3") is None
    assert P.model_display("sanet:ink") == "SANet · ink" and P.model_display("adaattn") == "AdaAttN"


def test_a_newer_daemons_model_stays_in_hello_models():
    """A base model this client does not know yet is kept (a newer daemon); only malformed variant names go."""
    from sanet_client import naming
    from sanet_client import protocol as P
    listed = P.hello_models({"models": [{"name": "sanet", "title": "SANet", "loaded": True},
                                        {"name": "newnet", "title": "NewNet (2027)", "loaded": False}]})
    assert [(m["name"], m["base"], m["display"]) for m in listed] == [("sanet", "sanet", "SANet"),
                                                                      ("newnet", "newnet", "newnet")]
    assert [m for m, _, _ in naming.model_choices([m["name"] for m in listed])] == ["sanet", "adaattn", "adaattn"]
