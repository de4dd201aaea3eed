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
