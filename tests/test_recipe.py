import pytest
from pocketbench.compress.recipe import TOKENS, Quantize, Recipe, RecipeError, parse_variant, variant_list


@pytest.mark.parametrize("name", sorted(TOKENS))
def test_every_named_variant_round_trips_through_json(name):
    recipe = parse_variant(name)
    assert Recipe.from_json(recipe.to_json()) == recipe


def test_fp32_has_no_steps_and_int8_is_static_per_channel():
    assert parse_variant("fp32").steps == ()
    (step,) = parse_variant("int8").steps
    assert step == Quantize(scheme="int8", per_channel=True, observer="minmax")


def test_unknown_variant_names_the_token_and_the_known_ones():
    with pytest.raises(RecipeError, match=r"unknown variant 'int9'.*fp32.*int8"):
        parse_variant("int9")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scheme": "int3"}, "scheme 'int3'"),
        ({"observer": "vibes"}, "observer 'vibes'"),
        ({"calibration_batches": 0}, "calibration_batches"),
    ],
)
def test_invalid_quantize_steps_fail_on_construction(kwargs, message):
    with pytest.raises(RecipeError, match=message):
        Quantize(**kwargs)


def test_quantizing_twice_is_rejected():
    with pytest.raises(RecipeError, match="more than once"):
        parse_variant("int8+int8-dynamic")


def test_one_variant_list_reader_for_strings_lists_and_recipes():
    """The CLI's comma string, the API's list (with Recipes) and the farm's TOML list read alike."""
    int8 = parse_variant("int8")
    assert variant_list("fp32, int8") == variant_list(["fp32", " int8 "]) == ["fp32", "int8"]
    assert variant_list(["fp32", int8]) == ["fp32", int8]
    with pytest.raises(RecipeError, match=r"^variants: 'int8' named twice; rename or drop one$"):
        variant_list("int8,int8")
    with pytest.raises(RecipeError, match=r"^variants: 'int8' named twice"):
        variant_list(["int8", int8])  # a Recipe counts by its name
    with pytest.raises(RecipeError, match=r"^no variants given: name at least one, e.g. fp32,int8$"):
        variant_list(" , ")
    with pytest.raises(RecipeError, match=r"^no baselines given: use --x$"):
        variant_list([], "baselines", "use --x")


def test_stored_recipe_with_unknown_step_type_is_rejected():
    with pytest.raises(RecipeError, match="unknown compression step"):
        Recipe.from_dict({"name": "x", "steps": [{"_type": "Teleport", "_version": 1, "_data": {}}]})
