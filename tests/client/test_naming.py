from sanet_client.naming import result_name


def test_result_names_read_the_same_in_every_editor():
    assert result_name(["Starry Night"]) == "Style: Starry Night (SANet)"
    assert result_name(["a", "b"], model="AdaAttN", alpha=0.8, preview=True) == "Style: a + b (AdaAttN, α 0.80, preview)"
    assert result_name(["a", "b", "c", "d"], preserve_color=True, semantic=True) == \
        "Style: a + b + c + … (SANet, colours kept, semantic)"
    assert result_name([], model="") == "Style: style"
