import pytest

from segkit.registry import ALL_REGISTRIES, Registry


def make():
    reg = Registry("widgets")

    @reg.register()
    class ResNetThing:
        """A thing."""

        def __init__(self, depth=18, width=1):
            self.depth, self.width = depth, width

    @reg.register(name="unet_thing")
    def build_unet(channels=8):
        return ("unet", channels)

    return reg, ResNetThing


def test_register_and_build_lowercases_kwargs():
    reg, cls = make()
    obj = reg.build({"NAME": "ResNetThing", "DEPTH": 34})
    assert isinstance(obj, cls) and obj.depth == 34 and obj.width == 1
    assert reg.build({"NAME": "unet_thing", "channels": 4}) == ("unet", 4)
    assert reg.build({"NAME": "unet_thing"}, channels=16) == ("unet", 16)
    assert "unet_thing" in reg and len(reg) == 2
    assert reg.list() == ["ResNetThing", "unet_thing"]
    assert reg.list(filter="*unet*") == ["unet_thing"]


def test_duplicate_name_is_an_error():
    reg, _ = make()
    with pytest.raises(KeyError, match="already registered in the widgets registry"):
        reg.register(lambda: None, name="unet_thing")


def test_unknown_name_lists_known_and_closest():
    reg, _ = make()
    with pytest.raises(KeyError) as e:
        reg.get("unet_thin")
    msg = e.value.args[0]
    assert "No widgets named 'unet_thin'" in msg
    assert "Did you mean 'unet_thing'?" in msg
    assert "ResNetThing" in msg


def test_build_with_bad_kwargs_names_the_entry():
    reg, _ = make()
    with pytest.raises(TypeError, match="widgets 'ResNetThing'"):
        reg.build({"NAME": "ResNetThing", "COLOUR": "red"})
    with pytest.raises(KeyError, match="needs a NAME"):
        reg.build({"DEPTH": 3})


def test_natural_sort_and_standard_registries_exist():
    reg = Registry("r")
    for n in ["resnet101", "resnet18", "resnet50"]:
        reg.register(object, name=n)
    assert reg.list() == ["resnet18", "resnet50", "resnet101"]
    assert set(ALL_REGISTRIES) == {"backbones", "decoders", "losses", "transforms", "hooks", "datasets",
                                   "optimizers", "schedulers"}
